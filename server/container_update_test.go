package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

func TestValidateUpdates(t *testing.T) {
	type res = runtimeapi.LinuxContainerResources
	ctr := func(r *res) any {
		return &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "c", Linux: r}
	}
	pod := func(overhead, r *res) any {
		return &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "p", Overhead: overhead, Resources: r}
	}
	for _, tc := range []struct {
		name  string
		rpc   string
		req   any
		field string // "" when valid
	}{
		{"no container id", "UpdateContainerResources", &runtimeapi.UpdateContainerResourcesRequest{}, "container_id"},
		{"nothing to change", "UpdateContainerResources", ctr(nil), ""},
		{"kubelet resize", "UpdateContainerResources", ctr(&res{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 1 << 28}), ""},
		{"quota alone", "UpdateContainerResources", ctr(&res{CpuQuota: 50000}), ""},
		{"negative memory", "UpdateContainerResources", ctr(&res{MemoryLimitInBytes: -1}), "linux.memory_limit_in_bytes"},
		{"period out of range", "UpdateContainerResources", ctr(&res{CpuPeriod: 5}), "linux.cpu_period"},
		{"cpuset that does not parse", "UpdateContainerResources", ctr(&res{CpusetCpus: "0,,1"}), "linux.cpuset_cpus"},
		{"unknown hugepage size", "UpdateContainerResources", ctr(&res{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "huge"}}}), "linux.hugepage_limits[0].page_size"},
		{"unified key with a slash", "UpdateContainerResources", ctr(&res{Unified: map[string]string{"a/b": "1"}}), `linux.unified["a/b"]`},
		{"unified key dot-dot", "UpdateContainerResources", ctr(&res{Unified: map[string]string{"..": "1"}}), `linux.unified[".."]`},
		{"no pod id", "UpdatePodSandboxResources", &runtimeapi.UpdatePodSandboxResourcesRequest{}, "pod_sandbox_id"},
		{"pod resize", "UpdatePodSandboxResources", pod(&res{MemoryLimitInBytes: 1 << 20}, &res{MemoryLimitInBytes: 1 << 28}), ""},
		{"bad overhead", "UpdatePodSandboxResources", pod(&res{CpuShares: 1}, nil), "overhead.cpu_shares"},
		{"bad resources", "UpdatePodSandboxResources", pod(nil, &res{CpusetMems: "x"}), "resources.cpuset_mems"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validators[tc.rpc](tc.req)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tc.field+": ") {
				t.Errorf("%v, want InvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

func TestContainerResources(t *testing.T) {
	cfg, _ := proto.Marshal(&runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{
		Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20},
	}})
	c := &store.Container{ConfigPB: cfg}
	if r := containerResources(c); r.GetMemoryLimitInBytes() != 1<<20 {
		t.Errorf("as created: %v", r)
	}
	c.Resources, _ = proto.Marshal(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 2 << 20})
	if r := containerResources(c); r.GetMemoryLimitInBytes() != 2<<20 {
		t.Errorf("as updated: %v", r)
	}
	if r := containerResources(&store.Container{}); r != nil {
		t.Errorf("without resources: %v", r)
	}
}
