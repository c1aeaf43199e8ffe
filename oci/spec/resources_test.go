package spec

import (
	"maps"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestBuildResources(t *testing.T) {
	type res = runtimeapi.LinuxContainerResources
	for _, tc := range []struct {
		name      string
		r         *res
		pids      int64
		v2        bool
		noHugetlb bool
		check     func(t *testing.T, got *specs.LinuxResources)
		err       string
	}{
		{
			name: "nothing",
			check: func(t *testing.T, got *specs.LinuxResources) {
				if got.CPU != nil || got.Memory != nil || got.Pids != nil {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name: "kubelet burstable",
			r:    &res{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 256 << 20, MemorySwapLimitInBytes: 256 << 20, CpusetCpus: "0-1", CpusetMems: "0"},
			pids: 1024,
			check: func(t *testing.T, got *specs.LinuxResources) {
				c, m := got.CPU, got.Memory
				if *c.Period != 100000 || *c.Quota != 50000 || *c.Shares != 512 || c.Cpus != "0-1" || c.Mems != "0" {
					t.Errorf("cpu %+v", c)
				}
				if *m.Limit != 256<<20 || *m.Swap != 256<<20 {
					t.Errorf("memory %+v", m)
				}
				if *got.Pids.Limit != 1024 {
					t.Errorf("pids %+v", got.Pids)
				}
			},
		},
		{
			name: "besteffort shares only",
			r:    &res{CpuShares: 2, OomScoreAdj: 1000},
			check: func(t *testing.T, got *specs.LinuxResources) {
				if got.CPU.Period != nil || got.CPU.Quota != nil || *got.CPU.Shares != 2 || got.Memory != nil {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name: "unlimited quota and swap, unlimited pids",
			r:    &res{CpuQuota: -1, MemoryLimitInBytes: 1 << 30, MemorySwapLimitInBytes: -1},
			pids: -1,
			check: func(t *testing.T, got *specs.LinuxResources) {
				if *got.CPU.Quota != -1 || *got.Memory.Swap != -1 || *got.Pids.Limit != -1 {
					t.Errorf("got %+v %+v %+v", got.CPU, got.Memory, got.Pids)
				}
			},
		},
		{
			name: "hugepages",
			r:    &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}, {PageSize: "1GB", Limit: 1 << 30}}},
			check: func(t *testing.T, got *specs.LinuxResources) {
				want := []specs.LinuxHugepageLimit{{Pagesize: "2MB"}, {Pagesize: "1GB", Limit: 1 << 30}}
				if !slices.Equal(got.HugepageLimits, want) {
					t.Errorf("hugepages %+v", got.HugepageLimits)
				}
			},
		},
		{
			name:      "hugepages without the hugetlb controller",
			r:         &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}}},
			noHugetlb: true,
			check: func(t *testing.T, got *specs.LinuxResources) {
				if got.HugepageLimits != nil {
					t.Errorf("hugepages %+v", got.HugepageLimits)
				}
			},
		},
		{name: "bad page size without the hugetlb controller", r: &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "huge"}}}, noHugetlb: true, err: "linux.resources.hugepage_limits[0].page_size:"},
		{
			name: "unified on v2",
			r:    &res{Unified: map[string]string{"memory.high": "1000000", "io.weight": "default 100"}},
			v2:   true,
			check: func(t *testing.T, got *specs.LinuxResources) {
				if !maps.Equal(got.Unified, map[string]string{"memory.high": "1000000", "io.weight": "default 100"}) {
					t.Errorf("unified %v", got.Unified)
				}
			},
		},
		{name: "unified on v1", r: &res{Unified: map[string]string{"memory.high": "1"}}, err: "linux.resources.unified: cgroup v2 settings on a host without cgroup v2"},
		{name: "unified path key", r: &res{Unified: map[string]string{"../cgroup.procs": "1"}}, v2: true, err: `linux.resources.unified["../cgroup.procs"]: not a cgroup file name`},
		{name: "unified NUL value", r: &res{Unified: map[string]string{"memory.max": "1\x00"}}, v2: true, err: `linux.resources.unified["memory.max"]: value contains a NUL byte`},
		{name: "negative period", r: &res{CpuPeriod: -1}, err: "linux.resources.cpu_period: -1 is outside"},
		{name: "period too small", r: &res{CpuPeriod: 999}, err: "linux.resources.cpu_period: 999 is outside [1000, 1000000]"},
		{name: "period too large", r: &res{CpuPeriod: 1000001}, err: "linux.resources.cpu_period:"},
		{name: "quota without period", r: &res{CpuQuota: 50000}, err: "linux.resources.cpu_quota: set without cpu_period"},
		{name: "quota too small", r: &res{CpuPeriod: 100000, CpuQuota: 10}, err: "linux.resources.cpu_quota: 10 is below"},
		{name: "negative quota", r: &res{CpuPeriod: 100000, CpuQuota: -2}, err: "linux.resources.cpu_quota: -2 is below"},
		{name: "negative shares", r: &res{CpuShares: -5}, err: "linux.resources.cpu_shares: -5 is outside [2, 262144]"},
		{name: "shares too large", r: &res{CpuShares: 1 << 20}, err: "linux.resources.cpu_shares:"},
		{name: "negative memory", r: &res{MemoryLimitInBytes: -1}, err: "linux.resources.memory_limit_in_bytes: -1 is negative"},
		{name: "negative swap", r: &res{MemoryLimitInBytes: 1, MemorySwapLimitInBytes: -2}, err: "linux.resources.memory_swap_limit_in_bytes: -2 is negative"},
		{name: "swap without memory", r: &res{MemorySwapLimitInBytes: 1 << 20}, err: "linux.resources.memory_swap_limit_in_bytes: set without memory_limit_in_bytes"},
		{name: "swap below memory", r: &res{MemoryLimitInBytes: 2 << 20, MemorySwapLimitInBytes: 1 << 20}, err: "linux.resources.memory_swap_limit_in_bytes: 1048576 is below"},
		{name: "bad cpuset", r: &res{CpusetCpus: "0-"}, err: `linux.resources.cpuset_cpus: "0-": not a list`},
		{name: "reversed cpuset", r: &res{CpusetCpus: "3-1"}, err: "linux.resources.cpuset_cpus:"},
		{name: "bad mems", r: &res{CpusetMems: "a"}, err: `linux.resources.cpuset_mems: "a"`},
		{name: "bad page size", r: &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2M"}}}, err: `linux.resources.hugepage_limits[0].page_size: "2M" is not a page size`},
		{name: "duplicate page size", r: &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "2MB"}}}, err: "linux.resources.hugepage_limits[1].page_size: 2MB is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buildResources(tc.r, tc.pids, tc.v2, !tc.noHugetlb)
			if wantInvalid(t, err, tc.err) {
				return
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func TestCheckCPUList(t *testing.T) {
	for s, ok := range map[string]bool{
		"0": true, "0-3": true, "0,2,4-7": true, "1-1": true,
		"": false, ",": false, "0,": false, "-1": false, "a": false, "0-1-2": false, "0 - 1": false, "4-2": false,
	} {
		if err := checkCPUList(s); (err == nil) != ok {
			t.Errorf("checkCPUList(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

func TestOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct {
		v        int64
		canLower bool
		want     int
		err      string
	}{
		{v: 1000, want: 1000},
		{v: 0, want: 0},
		{v: 500, canLower: true, want: 500},
		{v: -997, canLower: true, want: -997},
		{v: -997, canLower: false, want: 0},
		{v: -1000, want: 0},
		{v: 1001, err: "linux.resources.oom_score_adj: 1001 is outside [-1000, 1000]"},
		{v: -1001, canLower: true, err: "linux.resources.oom_score_adj: -1001 is outside"},
	} {
		got, err := oomScoreAdj(tc.v, tc.canLower)
		if wantInvalid(t, err, tc.err) {
			continue
		}
		if got != tc.want {
			t.Errorf("oomScoreAdj(%d, %v) = %d, want %d", tc.v, tc.canLower, got, tc.want)
		}
	}
}
