package spec

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMergeResources(t *testing.T) {
	type res = runtimeapi.LinuxContainerResources
	burstable := &res{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 96 << 20,
		CpusetCpus: "0", CpusetMems: "0", OomScoreAdj: 5,
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}, Unified: map[string]string{"memory.high": "1000"}}
	for _, tc := range []struct {
		name     string
		cur, req *res
		want     *res
	}{
		{name: "nothing", want: &res{}},
		{name: "an empty request changes nothing", cur: burstable, req: &res{}, want: burstable},
		{
			name: "every field replaced",
			cur:  burstable,
			req: &res{CpuPeriod: 50000, CpuQuota: 20000, CpuShares: 1024, MemoryLimitInBytes: 128 << 20, MemorySwapLimitInBytes: 128 << 20,
				CpusetCpus: "1", CpusetMems: "0-1", OomScoreAdj: 900},
			want: &res{CpuPeriod: 50000, CpuQuota: 20000, CpuShares: 1024, MemoryLimitInBytes: 128 << 20, MemorySwapLimitInBytes: 128 << 20,
				CpusetCpus: "1", CpusetMems: "0-1", OomScoreAdj: 5,
				HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}, Unified: map[string]string{"memory.high": "1000"}},
		},
		{
			name: "a new memory limit keeps the swap allowance",
			cur:  &res{MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 96 << 20},
			req:  &res{MemoryLimitInBytes: 128 << 20},
			want: &res{MemoryLimitInBytes: 128 << 20, MemorySwapLimitInBytes: 160 << 20},
		},
		{
			name: "no swap limit stays none",
			cur:  &res{MemoryLimitInBytes: 64 << 20},
			req:  &res{MemoryLimitInBytes: 32 << 20},
			want: &res{MemoryLimitInBytes: 32 << 20},
		},
		{
			name: "unlimited swap stays unlimited",
			cur:  &res{MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: -1},
			req:  &res{MemoryLimitInBytes: 32 << 20},
			want: &res{MemoryLimitInBytes: 32 << 20, MemorySwapLimitInBytes: -1},
		},
		{
			name: "quota alone gets the period in effect",
			cur:  &res{CpuPeriod: 50000, CpuQuota: 10000},
			req:  &res{CpuQuota: 20000},
			want: &res{CpuPeriod: 50000, CpuQuota: 20000},
		},
		{
			name: "quota alone on a container without one gets the kernel's period",
			req:  &res{CpuQuota: 20000},
			want: &res{CpuPeriod: 100000, CpuQuota: 20000},
		},
		{
			name: "unlimited quota",
			cur:  &res{CpuPeriod: 100000, CpuQuota: 10000},
			req:  &res{CpuQuota: -1},
			want: &res{CpuPeriod: 100000, CpuQuota: -1},
		},
		{
			name: "hugepages and unified merge by key",
			cur:  &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1}, {PageSize: "1GB", Limit: 0}}, Unified: map[string]string{"a": "1", "b": "2"}},
			req:  &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "1GB", Limit: 1 << 30}, {PageSize: "4MB", Limit: 4}}, Unified: map[string]string{"b": "3", "c": "4"}},
			want: &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1}, {PageSize: "1GB", Limit: 1 << 30}, {PageSize: "4MB", Limit: 4}},
				Unified: map[string]string{"a": "1", "b": "3", "c": "4"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before *res
			if tc.cur != nil {
				before = proto.Clone(tc.cur).(*res)
			}
			got := MergeResources(tc.cur, tc.req)
			if !proto.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			if tc.cur != nil && !proto.Equal(tc.cur, before) {
				t.Errorf("the current resources were changed: %v", tc.cur)
			}
		})
	}
}

func TestUpdateResources(t *testing.T) {
	type res = runtimeapi.LinuxContainerResources
	for _, tc := range []struct {
		name   string
		prefix string
		r      *res
		v1     bool
		field  string // the field an error must name; "" for success
	}{
		{name: "negative memory", r: &res{MemoryLimitInBytes: -5}, field: "linux.memory_limit_in_bytes"},
		{name: "period too short", r: &res{CpuPeriod: 999}, field: "linux.cpu_period"},
		{name: "period too long", r: &res{CpuPeriod: 1000001}, field: "linux.cpu_period"},
		{name: "quota too small", r: &res{CpuPeriod: 100000, CpuQuota: 10}, field: "linux.cpu_quota"},
		{name: "shares too large", r: &res{CpuShares: 1 << 20}, field: "linux.cpu_shares"},
		{name: "cpuset not a list", r: &res{CpusetCpus: "0-a"}, field: "linux.cpuset_cpus"},
		{name: "cpuset range backwards", r: &res{CpusetMems: "3-1"}, field: "linux.cpuset_mems"},
		{name: "unknown hugepage size", r: &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2XB"}}}, field: "linux.hugepage_limits[0].page_size"},
		{name: "unified key with a slash", r: &res{Unified: map[string]string{"../memory.max": "1"}}, field: `linux.unified["../memory.max"]`},
		{name: "unified dot-dot", r: &res{Unified: map[string]string{"..": "1"}}, field: `linux.unified[".."]`},
		{name: "unified on cgroup v1", r: &res{Unified: map[string]string{"memory.high": "1"}}, v1: true, field: "linux.unified"},
		{name: "oom score out of range", r: &res{OomScoreAdj: 1001}, field: "linux.oom_score_adj"},
		{name: "the prefix names the request field", prefix: "overhead.", r: &res{MemoryLimitInBytes: -1}, field: "overhead.memory_limit_in_bytes"},
		{name: "valid", r: &res{CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 2, MemoryLimitInBytes: 1 << 26, CpusetCpus: "0", Unified: map[string]string{"memory.high": "max"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := tc.prefix
			if prefix == "" {
				prefix = "linux."
			}
			got, err := UpdateResources(prefix, tc.r, !tc.v1, true)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if *got.CPU.Quota != 20000 || *got.CPU.Period != 100000 || *got.Memory.Limit != 1<<26 || got.CPU.Cpus != "0" || got.Pids != nil || got.Unified["memory.high"] != "max" {
					t.Errorf("got %+v cpu %+v memory %+v", got, got.CPU, got.Memory)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Errorf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
}

func TestPodResources(t *testing.T) {
	type res = runtimeapi.LinuxContainerResources
	for _, tc := range []struct {
		name                string
		overhead, resources *res
		want                *res
	}{
		{name: "nothing", want: &res{}},
		{
			name:      "no overhead",
			resources: &res{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 1 << 30, OomScoreAdj: 3},
			want:      &res{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 1 << 30},
		},
		{
			name:      "overhead adds up",
			overhead:  &res{CpuPeriod: 100000, CpuQuota: 10000, CpuShares: 102, MemoryLimitInBytes: 32 << 20},
			resources: &res{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20, CpusetCpus: "0"},
			want:      &res{CpuPeriod: 100000, CpuQuota: 60000, CpuShares: 614, MemoryLimitInBytes: 96 << 20, MemorySwapLimitInBytes: 96 << 20, CpusetCpus: "0"},
		},
		{
			name:      "the overhead's quota is scaled to the resources' period",
			overhead:  &res{CpuPeriod: 50000, CpuQuota: 5000},
			resources: &res{CpuPeriod: 100000, CpuQuota: 50000},
			want:      &res{CpuPeriod: 100000, CpuQuota: 60000},
		},
		{
			name:      "unlimited stays unlimited",
			overhead:  &res{CpuPeriod: 100000, CpuQuota: 10000, MemoryLimitInBytes: 32 << 20, CpuShares: 10},
			resources: &res{CpuShares: 0},
			want:      &res{},
		},
		{
			name:      "an unlimited overhead quota makes the pod unlimited",
			overhead:  &res{CpuQuota: -1},
			resources: &res{CpuPeriod: 100000, CpuQuota: 50000},
			want:      &res{CpuPeriod: 100000, CpuQuota: -1},
		},
		{
			name:      "hugepages add where limited",
			overhead:  &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 2}, {PageSize: "1GB", Limit: 1}}},
			resources: &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4}}},
			want:      &res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 6}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodResources(tc.overhead, tc.resources); !proto.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
