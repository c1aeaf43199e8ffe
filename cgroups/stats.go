package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	cgroupsv3 "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Stats is a cgroup's resource usage, as ContainerStats reports it.
type Stats struct {
	// MemoryUsage is all memory charged to the cgroup, page cache
	// included, in bytes.
	MemoryUsage uint64
	// MemoryWorkingSet is MemoryUsage less the inactive file cache (what
	// the kernel can reclaim first), as the kubelet computes it. It is what
	// eviction decisions look at.
	MemoryWorkingSet uint64
	// MemoryLimit is the memory limit in bytes; 0 means none.
	MemoryLimit uint64
	// CPUUsageNanos is the CPU time used, in nanoseconds.
	CPUUsageNanos uint64
	// Pids is the number of tasks (threads included) in the cgroup.
	Pids uint64
	// OOMKills counts processes the OOM killer killed in the cgroup.
	OOMKills uint64

	// The rest feeds the cadvisor-style metrics; zero where the host does
	// not account it (swap without swap accounting, for example).

	CPUUserNanos, CPUSystemNanos uint64
	// CPUPeriods and CPUThrottledPeriods count CFS quota periods, and
	// CPUThrottledNanos the time the cgroup was held back by its quota.
	CPUPeriods, CPUThrottledPeriods, CPUThrottledNanos uint64

	// MemoryCache is page cache, MemoryRSS anonymous memory and swap
	// cache, MemoryMappedFile the mapped part of the cache, in bytes.
	MemoryCache, MemoryRSS, MemoryMappedFile uint64
	MemorySwap                               uint64 // swap in use, in bytes
	MemoryKernel                             uint64 // kernel memory charged to the cgroup, in bytes
	MemoryMaxUsage                           uint64 // the peak of MemoryUsage (v1; v2 kernels with memory.peak)
	MemoryFailcnt                            uint64 // times the limit was hit (v1), or "max" events (v2)
	PgFault                                  uint64 // page faults of the cgroup's own tasks (v1) or all (v2)
	PgMajFault                               uint64
	TotalPgFault                             uint64 // page faults of the whole hierarchy below it
	TotalPgMajFault                          uint64
	// PidsLimit is pids.max; 0 means none.
	PidsLimit uint64
}

// unlimited is the smallest v1 memory limit that means "no limit": the
// kernel reports PAGE_COUNTER_MAX pages, just under 2^63 bytes.
const unlimited = 1 << 62

// ReadStats reads the usage of the cgroup at p: from the memory, cpuacct
// and pids controllers on a v1 or hybrid host (the unified hierarchy there
// has no controllers), from the unified hierarchy's files on a v2 host. A
// cgroup that exists on none of them gives an error matching
// fs.ErrNotExist.
func ReadStats(p string) (Stats, error) {
	if err := CheckPath(p); err != nil {
		return Stats{}, fmt.Errorf("cgroups: stats: %w", err)
	}
	hs, err := hierarchies()
	if err != nil {
		return Stats{}, err
	}
	if cgroupsv3.Mode() == cgroupsv3.Unified {
		h, ok := unifiedHierarchy(hs)
		if !ok {
			return Stats{}, errors.New("cgroups: stats: the unified hierarchy is not mounted")
		}
		return readV2(h.mount, p)
	}
	return readV1(hs, p)
}

func readV1(hs []hierarchy, p string) (Stats, error) {
	// Only the controllers the numbers come from: loading every subsystem
	// would stat blkio and the rest for nothing (ReadIO reads blkio).
	var subsystems []cgroup1.Subsystem
	for _, c := range []struct {
		name string
		new  func(root string) cgroup1.Subsystem
	}{
		{"memory", func(r string) cgroup1.Subsystem { return cgroup1.NewMemory(r) }},
		{"cpuacct", func(r string) cgroup1.Subsystem { return cgroup1.NewCpuacct(r) }},
		{"pids", func(r string) cgroup1.Subsystem { return cgroup1.NewPids(r) }},
		{"cpu", func(r string) cgroup1.Subsystem { return cgroup1.NewCpu(r) }},
	} {
		h, ok := controllerHierarchy(hs, c.name)
		if !ok {
			continue
		}
		// The constructors append the controller's name to the root they
		// are given: a controller co-mounted with others (cpu,cpuacct) is
		// reached through the symbolic link hosts make for each name.
		subsystems = append(subsystems, c.new(filepath.Dir(h.mount)))
	}
	if len(subsystems) == 0 {
		return Stats{}, errors.New("cgroups: stats: none of the memory, cpuacct, pids and cpu controllers is mounted")
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(p), cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
		return subsystems, nil
	}))
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return Stats{}, fmt.Errorf("cgroups: stats %s: %w", p, fs.ErrNotExist)
		}
		return Stats{}, fmt.Errorf("cgroups: stats %s: %w", p, err)
	}
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Stats{}, fmt.Errorf("cgroups: stats %s: %w", p, err)
	}
	var st Stats
	if mem := m.GetMemory(); mem != nil {
		st.MemoryUsage = mem.GetUsage().GetUsage()
		st.MemoryWorkingSet = workingSet(st.MemoryUsage, mem.GetTotalInactiveFile())
		if l := mem.GetUsage().GetLimit(); l < unlimited {
			st.MemoryLimit = l
		}
	}
	st.CPUUsageNanos = m.GetCPU().GetUsage().GetTotal()
	st.Pids = m.GetPids().GetCurrent()
	st.OOMKills = m.GetMemoryOomControl().GetOomKill()
	st.CPUUserNanos = m.GetCPU().GetUsage().GetUser()
	st.CPUSystemNanos = m.GetCPU().GetUsage().GetKernel()
	if t := m.GetCPU().GetThrottling(); t != nil {
		st.CPUPeriods, st.CPUThrottledPeriods, st.CPUThrottledNanos = t.GetPeriods(), t.GetThrottledPeriods(), t.GetThrottledTime()
	}
	if mem := m.GetMemory(); mem != nil {
		st.MemoryCache = mem.GetTotalCache()
		st.MemoryRSS = mem.GetTotalRSS()
		st.MemoryMappedFile = mem.GetTotalMappedFile()
		if sw := mem.GetSwap().GetUsage(); sw > st.MemoryUsage {
			// memory.memsw.usage_in_bytes is memory and swap together.
			st.MemorySwap = sw - st.MemoryUsage
		}
		st.MemoryKernel = mem.GetKernel().GetUsage()
		st.MemoryMaxUsage = mem.GetUsage().GetMax()
		st.MemoryFailcnt = mem.GetUsage().GetFailcnt()
		st.PgFault, st.PgMajFault = mem.GetPgFault(), mem.GetPgMajFault()
		st.TotalPgFault, st.TotalPgMajFault = mem.GetTotalPgFault(), mem.GetTotalPgMajFault()
	}
	if l := m.GetPids().GetLimit(); l < math.MaxInt64 {
		st.PidsLimit = l
	}
	return st, nil
}

func readV2(mount, p string) (Stats, error) {
	if _, err := os.Stat(filepath.Join(mount, p)); err != nil {
		return Stats{}, fmt.Errorf("cgroups: stats %s: %w", p, err)
	}
	cg, err := cgroup2.Load(p, cgroup2.WithMountpoint(mount))
	if err != nil {
		return Stats{}, fmt.Errorf("cgroups: stats %s: %w", p, err)
	}
	m, err := cg.StatFiltered(cgroup2.StatMemory | cgroup2.StatMemoryEvents | cgroup2.StatCPU | cgroup2.StatPids)
	if err != nil {
		return Stats{}, fmt.Errorf("cgroups: stats %s: %w", p, err)
	}
	var st Stats
	if mem := m.GetMemory(); mem != nil {
		st.MemoryUsage = mem.GetUsage()
		st.MemoryWorkingSet = workingSet(st.MemoryUsage, mem.GetInactiveFile())
		// "max" reads as MaxUint64.
		if l := mem.GetUsageLimit(); l != math.MaxUint64 {
			st.MemoryLimit = l
		}
	}
	st.CPUUsageNanos = m.GetCPU().GetUsageUsec() * 1000
	st.Pids = m.GetPids().GetCurrent()
	st.OOMKills = m.GetMemoryEvents().GetOomKill()
	cpu := m.GetCPU()
	st.CPUUserNanos, st.CPUSystemNanos = cpu.GetUserUsec()*1000, cpu.GetSystemUsec()*1000
	st.CPUPeriods, st.CPUThrottledPeriods, st.CPUThrottledNanos = cpu.GetNrPeriods(), cpu.GetNrThrottled(), cpu.GetThrottledUsec()*1000
	if mem := m.GetMemory(); mem != nil {
		st.MemoryCache = mem.GetFile()
		st.MemoryRSS = mem.GetAnon()
		st.MemoryMappedFile = mem.GetFileMapped()
		st.MemorySwap = mem.GetSwapUsage()
		st.MemoryKernel = mem.GetKernelStack() + mem.GetSlab() + mem.GetSock()
		st.MemoryMaxUsage = mem.GetMaxUsage()
		st.PgFault, st.PgMajFault = mem.GetPgfault(), mem.GetPgmajfault()
		st.TotalPgFault, st.TotalPgMajFault = st.PgFault, st.PgMajFault
	}
	st.MemoryFailcnt = m.GetMemoryEvents().GetMax()
	if l := m.GetPids().GetLimit(); l < math.MaxInt64 {
		st.PidsLimit = l
	}
	return st, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}
