package spec

import (
	"errors"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultCPUPeriod is the kernel's CFS period when none is set, in
// microseconds.
const defaultCPUPeriod = 100000

// MergeResources returns the resources a container has after an
// UpdateContainerResources request: cur (what it has now; nil for none)
// with every field the request sets replacing the one in cur. As in the
// CRI, zero or empty means "not set": containerd and CRI-O also leave such
// fields as they are, since CRI cannot say "remove the limit" except with
// -1 where the kernel has a word for it (cpu_quota, swap).
//
// Two fields follow from others so that the result stays consistent:
//   - a memory limit changed without a swap limit keeps the swap the
//     container had on top of its memory (swap is memory plus swap, and a
//     swap limit below the new memory limit would be refused);
//   - a quota without any period gets the kernel's default period, the one
//     in effect, so that the result reads as what the cgroup enforces.
//
// oom_score_adj is not changed by an update (it belongs to the processes,
// not to the cgroup); cur's stays.
func MergeResources(cur, req *runtimeapi.LinuxContainerResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if cur != nil {
		out = proto.Clone(cur).(*runtimeapi.LinuxContainerResources)
	}
	if req == nil {
		return out
	}
	if v := req.GetCpuPeriod(); v != 0 {
		out.CpuPeriod = v
	}
	if v := req.GetCpuQuota(); v != 0 {
		out.CpuQuota = v
	}
	if v := req.GetCpuShares(); v != 0 {
		out.CpuShares = v
	}
	if v := req.GetCpusetCpus(); v != "" {
		out.CpusetCpus = v
	}
	if v := req.GetCpusetMems(); v != "" {
		out.CpusetMems = v
	}
	oldLimit, oldSwap := out.MemoryLimitInBytes, out.MemorySwapLimitInBytes
	if v := req.GetMemoryLimitInBytes(); v != 0 {
		out.MemoryLimitInBytes = v
		if req.GetMemorySwapLimitInBytes() == 0 && oldSwap > 0 && oldLimit > 0 && oldSwap >= oldLimit {
			out.MemorySwapLimitInBytes = v + (oldSwap - oldLimit)
		}
	}
	if v := req.GetMemorySwapLimitInBytes(); v != 0 {
		out.MemorySwapLimitInBytes = v
	}
	for _, h := range req.GetHugepageLimits() {
		i := slices.IndexFunc(out.HugepageLimits, func(o *runtimeapi.HugepageLimit) bool { return o.GetPageSize() == h.GetPageSize() })
		if i >= 0 {
			out.HugepageLimits[i] = proto.Clone(h).(*runtimeapi.HugepageLimit)
		} else {
			out.HugepageLimits = append(out.HugepageLimits, proto.Clone(h).(*runtimeapi.HugepageLimit))
		}
	}
	if len(req.GetUnified()) > 0 && out.Unified == nil {
		out.Unified = map[string]string{}
	}
	for k, v := range req.GetUnified() {
		out.Unified[k] = v
	}
	if out.CpuQuota > 0 && out.CpuPeriod == 0 {
		out.CpuPeriod = defaultCPUPeriod
	}
	return out
}

// UpdateResources converts resources for an update of a running container
// or a pod's cgroup, checked as CreateContainer checks them (periods,
// quotas and shares within the kernel's bounds, cpuset lists, hugepage
// sizes, unified keys that stay inside the cgroup). Field errors name the
// field under prefix, e.g. "linux." for UpdateContainerResources, whose
// linux field is the resources themselves. The pids limit and device rules
// are not part of CRI resources and are left unset.
func UpdateResources(prefix string, r *runtimeapi.LinuxContainerResources, cgroupV2, hugetlb bool) (*specs.LinuxResources, error) {
	out, err := buildResources(r, 0, cgroupV2, hugetlb)
	if err == nil {
		_, err = oomScoreAdj(r.GetOomScoreAdj(), true)
	}
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return nil, &FieldError{Field: prefix + strings.TrimPrefix(fe.Field, resField), Msg: fe.Msg}
		}
		return nil, err
	}
	return out, nil
}

// PodResources is what a pod's cgroup gets from UpdatePodSandboxResources:
// the sum of its containers' resources and the pod's overhead. The
// overhead adds to what the resources limit; what they leave unset (zero:
// no limit) stays unset, since an overhead on top of "unlimited" is still
// unlimited. A quota is scaled to the resources' period before adding (the
// overhead may state another); an unlimited quota (-1) on either side
// leaves the pod unlimited. Cpusets and unified settings are the
// resources' alone: they are not amounts that add up.
func PodResources(overhead, resources *runtimeapi.LinuxContainerResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if resources != nil {
		out = proto.Clone(resources).(*runtimeapi.LinuxContainerResources)
	}
	out.OomScoreAdj = 0
	if overhead == nil {
		return out
	}
	if out.CpuShares > 0 {
		out.CpuShares += overhead.GetCpuShares()
	}
	switch oq := overhead.GetCpuQuota(); {
	case out.CpuQuota == 0, oq == 0:
	case oq == -1 || out.CpuQuota == -1:
		out.CpuQuota = -1
	default:
		op, p := overhead.GetCpuPeriod(), out.CpuPeriod
		if op == 0 {
			op = defaultCPUPeriod
		}
		if p == 0 {
			p = defaultCPUPeriod
		}
		out.CpuQuota += oq * p / op
	}
	if out.MemoryLimitInBytes > 0 {
		out.MemoryLimitInBytes += overhead.GetMemoryLimitInBytes()
		// Swap counts memory plus swap: it grows with the memory limit.
		if out.MemorySwapLimitInBytes > 0 {
			out.MemorySwapLimitInBytes += max(overhead.GetMemorySwapLimitInBytes(), overhead.GetMemoryLimitInBytes())
		}
	}
	for _, h := range overhead.GetHugepageLimits() {
		if i := slices.IndexFunc(out.HugepageLimits, func(o *runtimeapi.HugepageLimit) bool { return o.GetPageSize() == h.GetPageSize() }); i >= 0 {
			out.HugepageLimits[i].Limit += h.GetLimit()
		}
	}
	return out
}
