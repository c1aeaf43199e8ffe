package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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

func TestRefusedValue(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("set: %w", unix.EINVAL), true},
		{errors.New("berth-runtime update: write /sys/fs/cgroup/cpuset/p/c/cpuset.cpus: numerical result out of range"), true},
		{errors.New("berth-runtime update: write cpu.cfs_quota_us: invalid argument"), true},
		{errors.New("berth-runtime update: write memory.limit_in_bytes: device or resource busy"), false},
	} {
		if got := refusedValue(c.err); got != c.want {
			t.Errorf("refusedValue(%v) = %v", c.err, got)
		}
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
