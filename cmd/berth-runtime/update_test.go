package main

import (
	"testing"

	"github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUpdatedConfig(t *testing.T) {
	rule := &devices.Rule{Type: devices.CharDevice, Major: 1, Minor: 3, Permissions: "rwm", Allow: true}
	oldRes := &cgroups.Resources{Memory: 64 << 20, CpuQuota: 50000, CpuPeriod: 100000, Devices: []*devices.Rule{rule}}
	cfg := configs.Config{Cgroups: &cgroups.Cgroup{Path: "/pod/ctr", Resources: oldRes}, Labels: []string{"bundle=/b"}}
	mem, quota, period, shares := int64(128<<20), int64(20000), uint64(100000), uint64(512)
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &mem},
		CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares, Cpus: "0"},
		Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
	}
	got, err := updatedConfig(cfg, "ctr", false, r)
	if err != nil {
		t.Fatal(err)
	}
	res := got.Cgroups.Resources
	if res.Memory != mem || res.CpuQuota != quota || res.CpuPeriod != period || res.CpuShares != shares || res.CpusetCpus != "0" {
		t.Errorf("resources %+v", res)
	}
	if !res.SkipDevices || len(res.Devices) != 1 || res.Devices[0] != rule {
		t.Errorf("devices must stay as they are and be skipped: %+v %v", res.Devices, res.SkipDevices)
	}
	if got.Cgroups.Path != "/pod/ctr" || got.Labels[0] != "bundle=/b" {
		t.Errorf("the rest of the config changed: %+v", got.Cgroups)
	}
	// libcontainer keeps the old config if the update fails: it must be
	// untouched.
	if cfg.Cgroups.Resources != oldRes || oldRes.Memory != 64<<20 || oldRes.SkipDevices {
		t.Errorf("the old config was changed: %+v", oldRes)
	}
	if _, err := updatedConfig(configs.Config{}, "ctr", false, r); err == nil {
		t.Error("a config without cgroups was accepted")
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"9": 9, "KILL": 9, "sigterm": 15, "SIGHUP": 1} {
		if got, err := parseSignal(in); err != nil || int(got) != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseSignal("NOPE"); err == nil {
		t.Error("an unknown signal was accepted")
	}
}
