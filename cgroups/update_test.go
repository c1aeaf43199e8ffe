package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cgroupsv3 "github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSetResourcesV1(t *testing.T) {
	hs := needCgroups(t)
	if cgroupsv3.Mode() == cgroupsv3.Unified {
		t.Skip("reads cgroup v1 files")
	}
	base := testBase(t, hs)
	p := base + "/pod"
	read := func(controller, file string) string {
		t.Helper()
		h, ok := controllerHierarchy(hs, controller)
		if !ok {
			t.Skipf("no %s controller", controller)
		}
		b, err := os.ReadFile(filepath.Join(h.mount, p, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	mem, period, quota, pids := int64(96<<20), uint64(100000), int64(60000), int64(50)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		CPU:    &specs.LinuxCPU{Period: &period, Quota: &quota, Cpus: "0"},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
	// The cgroup does not exist yet: it is made, cpuset included.
	if err := SetResources(p, r); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][3]string{
		{"memory", "memory.limit_in_bytes", "100663296"},
		{"cpu", "cpu.cfs_quota_us", "60000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"pids", "pids.max", "50"},
	} {
		if got := read(f[0], f[1]); got != f[2] {
			t.Errorf("%s: %s, want %s", f[1], got, f[2])
		}
	}
	if mems := read("cpuset", "cpuset.mems"); mems == "" {
		t.Error("cpuset.mems was not inherited")
	}

	// Unset fields stay as they are.
	mem2 := int64(128 << 20)
	if err := SetResources(p, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem2}}); err != nil {
		t.Fatal(err)
	}
	if got, q := read("memory", "memory.limit_in_bytes"), read("cpu", "cpu.cfs_quota_us"); got != "134217728" || q != "60000" {
		t.Errorf("after a memory-only update: memory %s quota %s", got, q)
	}

	// A memory limit below what the cgroup holds: the kernel's EBUSY.
	h, _ := controllerHierarchy(hs, "memory")
	cmd := exec.Command("sh", "-c", `echo $$ > "$1"; exec sleep 100`, "sh", filepath.Join(h.mount, p, "cgroup.procs"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitTasks := func() bool {
		b, _ := os.ReadFile(filepath.Join(h.mount, p, "cgroup.procs"))
		return len(strings.TrimSpace(string(b))) > 0
	}
	for i := 0; i < 100 && !waitTasks(); i++ {
		exec.Command("sleep", "0.01").Run()
	}
	tiny := int64(4096)
	err := SetResources(p, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &tiny}})
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("limit below usage: %v, want EBUSY", err)
	}

	if err := SetResources("relative", r); err == nil {
		t.Error("a relative path was accepted")
	}
}
