package shim_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/shim"
)

// cgroupFile reads a file of a container's v1 cgroup.
func cgroupFile(t *testing.T, controller, cgPath, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, cgPath, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestUpdate(t *testing.T) {
	e := newEnv(t).launch()
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("reads cgroup v1 files")
	}
	cx := ctx(t)
	limited := func(s *specs.Spec) {
		mem, period, quota, pids := int64(64<<20), uint64(100000), int64(50000), int64(100)
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota, Cpus: "0"}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	}
	e.run("upd", limited, "sleep", "1000")
	cg := e.cgBase + "/upd"

	mem, period, quota := int64(128<<20), uint64(100000), int64(20000)
	next := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		CPU:    &specs.LinuxCPU{Period: &period, Quota: &quota, Cpus: "0-1"},
	}
	if err := e.c.Update(cx, "upd", next); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ controller, name, want string }{
		{"memory", "memory.limit_in_bytes", "134217728"},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0-1"},
		// Not in the update: kept as created.
		{"pids", "pids.max", "100"},
	} {
		if got := cgroupFile(t, f.controller, cg, f.name); got != f.want {
			t.Errorf("%s: %s, want %s", f.name, got, f.want)
		}
	}

	// The bundle's config.json and libcontainer's record say the same;
	// the device rules stay.
	var spec specs.Spec
	b, _ := os.ReadFile(filepath.Join(e.work, "bundles", "upd", "config.json"))
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	r := spec.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != mem || *r.CPU.Quota != quota || r.CPU.Cpus != "0-1" || *r.Pids.Limit != 100 || len(r.Devices) != 1 {
		t.Errorf("config.json resources: %+v", r)
	}
	b, err := os.ReadFile(filepath.Join(e.dir, shim.LibcontainerDir, "upd", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lc struct {
		Config struct {
			Cgroups struct {
				Memory    int64  `json:"memory"`
				CpuQuota  int64  `json:"cpu_quota"`
				PidsLimit *int64 `json:"pids_limit"`
			} `json:"cgroups"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &lc); err != nil {
		t.Fatal(err)
	}
	if c := lc.Config.Cgroups; c.Memory != mem || c.CpuQuota != quota || c.PidsLimit == nil || *c.PidsLimit != 100 {
		t.Errorf("libcontainer state: %+v", c)
	}

	// A container that is only created can be updated too.
	e.create("fresh", limited, "true")
	if err := e.c.Update(cx, "fresh", next); err != nil {
		t.Fatalf("update of a created container: %v", err)
	}
	if got := cgroupFile(t, "memory", e.cgBase+"/fresh", "memory.limit_in_bytes"); got != "134217728" {
		t.Errorf("created container's memory limit: %s", got)
	}

	// A memory limit below what the container holds (tmpfs pages, which
	// cannot be reclaimed without swap) is refused, and the old limit stays.
	e.run("full", limited, "sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; echo filled; sleep 1000")
	waitFor(t, 10*time.Second, "the container filled its tmpfs", func() bool {
		return strings.Contains(strings.Join(logLines(t, e.logPath("full")), "\n"), "filled")
	})
	small := int64(8 << 20)
	err = e.c.Update(cx, "full", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &small}})
	if !errors.Is(err, shim.ErrFailedPrecondition) || !strings.Contains(err.Error(), "below") {
		t.Errorf("limit below usage: %v, want a failed precondition", err)
	}
	if got := cgroupFile(t, "memory", e.cgBase+"/full", "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("memory limit after a refused update: %s, want the old 64 MiB", got)
	}

	// Stopped, unknown, empty.
	e.run("done", nil, "true")
	if _, err := e.c.Wait(cx, "done"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Update(cx, "done", next); !errors.Is(err, shim.ErrNotRunning) {
		t.Errorf("update of an exited container: %v, want not running", err)
	}
	if err := e.c.Update(cx, "nope", next); !errors.Is(err, shim.ErrNotFound) {
		t.Errorf("update of an unknown container: %v", err)
	}
	if err := e.c.Update(cx, "upd", nil); !errors.Is(err, shim.ErrInvalid) {
		t.Errorf("update without resources: %v", err)
	}
	bad := "x"
	if err := e.c.Update(cx, "upd", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: bad}}); !errors.Is(err, shim.ErrInvalid) {
		t.Errorf("a cpuset the kernel refuses: %v, want invalid", err)
	}
	if got := cgroupFile(t, "cpuset", cg, "cpuset.cpus"); got != "0-1" {
		t.Errorf("cpuset after a refused update: %s", got)
	}
}
