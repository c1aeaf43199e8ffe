package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestKeepUnchangeable(t *testing.T) {
	pids, other := int64(100), int64(5)
	weight := uint16(300)
	old := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Pids:    &specs.LinuxPids{Limit: &pids},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight},
	}
	mem := int64(1 << 20)
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}, Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
	got := keepUnchangeable(old, r)
	if len(got.Devices) != 1 || got.Devices[0].Allow || got.Pids != old.Pids || got.BlockIO != old.BlockIO || got.Memory != r.Memory {
		t.Errorf("got %+v", got)
	}
	if !r.Devices[0].Allow {
		t.Error("the request was changed")
	}
	// A pids limit in the request wins.
	r.Pids = &specs.LinuxPids{Limit: &other}
	if got := keepUnchangeable(old, r); *got.Pids.Limit != 5 {
		t.Errorf("pids %+v", got.Pids)
	}
	if got := keepUnchangeable(nil, r); got.Devices != nil {
		t.Errorf("devices without an old spec: %+v", got.Devices)
	}
}

func TestUpdatedConfig(t *testing.T) {
	rule := &devices.Rule{Type: devices.CharDevice, Major: 1, Minor: 3, Permissions: "rwm", Allow: true}
	oldRes := &cgroups.Resources{Memory: 64 << 20, CpuQuota: 50000, CpuPeriod: 100000, Devices: []*devices.Rule{rule}}
	cfg := configs.Config{Cgroups: &cgroups.Cgroup{Path: "/pod/ctr", Resources: oldRes}, Labels: []string{"bundle=/b"}}
	mem, quota, period, shares := int64(128<<20), int64(20000), uint64(100000), uint64(512)
	spec := &specs.Spec{Linux: &specs.Linux{CgroupsPath: "/pod/ctr"}}
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &mem},
		CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares, Cpus: "0"},
		Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
	}
	got, err := updatedConfig(cfg, "ctr", spec, r)
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
	if cfg.Cgroups.Resources != oldRes || oldRes.Memory != 64<<20 || oldRes.SkipDevices || spec.Linux.Resources != nil {
		t.Errorf("the old config was changed: %+v", oldRes)
	}
	if _, err := updatedConfig(configs.Config{}, "ctr", spec, r); err == nil {
		t.Error("a config without cgroups was accepted")
	}
}

func TestWriteBundleResources(t *testing.T) {
	dir := t.TempDir()
	orig := `{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"hostname":"h","linux":{"cgroupsPath":"/p/c","resources":{"memory":{"limit":1}}}}`
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(orig), 0o600)
	mem := int64(2 << 20)
	if err := writeBundleResources(dir, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if *s.Linux.Resources.Memory.Limit != mem || s.Root.Path != "rootfs" || s.Hostname != "h" || s.Linux.CgroupsPath != "/p/c" {
		t.Errorf("config.json after the update: %s", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left in the bundle: %v", ents)
	}
	if err := writeBundleResources(filepath.Join(dir, "missing"), &specs.LinuxResources{}); err == nil {
		t.Error("a missing bundle was accepted")
	}
}
