package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const resField = "linux.resources."

// Kernel limits of the CFS bandwidth controller, in microseconds, and of
// cgroup v1 cpu.shares.
const (
	minCPUPeriod = 1000
	maxCPUPeriod = 1000000
	minCPUQuota  = 1000
	minCPUShares = 2
	maxCPUShares = 262144
)

// hugePageSize is a CRI hugepage size: a number and a binary unit, as in
// hugetlb.<size>.limit_in_bytes.
var hugePageSize = regexp.MustCompile(`^[1-9][0-9]*(KB|MB|GB|TB|PB)$`)

// buildResources converts and checks the container's resources. Zero
// means unset throughout, as in the CRI. pidsLimit is the pod's: 0 unset,
// -1 unlimited. Unified (cgroup v2) settings are refused on a cgroup v1
// host, where libcontainer would fail the start on them anyway. Hugepage
// limits are checked, then dropped when the host's cgroup manager has no
// hugetlb controller: kubelet sends a limit for every page size the kernel
// knows, whatever the cgroup setup, and libcontainer fails the start on a
// limit it cannot apply (containerd tolerates the missing controller the
// same way by default).
func buildResources(r *runtimeapi.LinuxContainerResources, pidsLimit int64, cgroupV2, hugetlb bool) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	if pidsLimit != 0 {
		if pidsLimit < -1 {
			return nil, fmt.Errorf("pids limit %d is negative", pidsLimit)
		}
		out.Pids = &specs.LinuxPids{Limit: ptr(pidsLimit)}
	}
	if r == nil {
		return out, nil
	}
	cpu, err := cpuResources(r)
	if err != nil {
		return nil, err
	}
	out.CPU = cpu
	if out.Memory, err = memoryResources(r); err != nil {
		return nil, err
	}

	seen := map[string]bool{}
	for i, h := range r.GetHugepageLimits() {
		field := indexed(resField+"hugepage_limits", i) + ".page_size"
		if !hugePageSize.MatchString(h.GetPageSize()) {
			return nil, fieldErr(field, "%q is not a page size like 2MB or 1GB", h.GetPageSize())
		}
		if seen[h.GetPageSize()] {
			return nil, fieldErr(field, "%s is listed twice", h.GetPageSize())
		}
		seen[h.GetPageSize()] = true
		if hugetlb {
			out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
		}
	}

	if len(r.GetUnified()) > 0 && !cgroupV2 {
		return nil, fieldErr(resField+"unified", "cgroup v2 settings on a host without cgroup v2")
	}
	for k, v := range r.GetUnified() {
		field := resField + "unified[" + strconv.Quote(k) + "]"
		// A key names a file in the container's own cgroup directory:
		// never a path out of it.
		if k == "" || strings.ContainsAny(k, "/\x00\n") || strings.HasPrefix(k, ".") {
			return nil, fieldErr(field, "not a cgroup file name")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fieldErr(field, "value contains a NUL byte")
		}
	}
	out.Unified = copyMap(r.GetUnified())
	return out, nil
}

func cpuResources(r *runtimeapi.LinuxContainerResources) (*specs.LinuxCPU, error) {
	cpu := &specs.LinuxCPU{}
	set := false
	switch p := r.GetCpuPeriod(); {
	case p == 0:
	case p < minCPUPeriod || p > maxCPUPeriod:
		return nil, fieldErr(resField+"cpu_period", "%d is outside [%d, %d] microseconds", p, minCPUPeriod, maxCPUPeriod)
	default:
		cpu.Period, set = ptr(uint64(p)), true
	}
	switch q := r.GetCpuQuota(); {
	case q == 0:
	case q == -1:
		cpu.Quota, set = ptr(q), true
	case q < minCPUQuota:
		return nil, fieldErr(resField+"cpu_quota", "%d is below the kernel's minimum of %d microseconds (-1 means no limit)", q, minCPUQuota)
	case r.GetCpuPeriod() == 0:
		return nil, fieldErr(resField+"cpu_quota", "set without cpu_period")
	default:
		cpu.Quota, set = ptr(q), true
	}
	switch s := r.GetCpuShares(); {
	case s == 0:
	case s < minCPUShares || s > maxCPUShares:
		return nil, fieldErr(resField+"cpu_shares", "%d is outside [%d, %d]", s, minCPUShares, maxCPUShares)
	default:
		cpu.Shares, set = ptr(uint64(s)), true
	}
	if c := r.GetCpusetCpus(); c != "" {
		if err := checkCPUList(c); err != nil {
			return nil, fieldErr(resField+"cpuset_cpus", "%q: %v", c, err)
		}
		cpu.Cpus, set = c, true
	}
	if m := r.GetCpusetMems(); m != "" {
		if err := checkCPUList(m); err != nil {
			return nil, fieldErr(resField+"cpuset_mems", "%q: %v", m, err)
		}
		cpu.Mems, set = m, true
	}
	if !set {
		return nil, nil
	}
	return cpu, nil
}

func memoryResources(r *runtimeapi.LinuxContainerResources) (*specs.LinuxMemory, error) {
	limit, swap := r.GetMemoryLimitInBytes(), r.GetMemorySwapLimitInBytes()
	if limit < 0 {
		return nil, fieldErr(resField+"memory_limit_in_bytes", "%d is negative", limit)
	}
	switch {
	case swap < -1:
		return nil, fieldErr(resField+"memory_swap_limit_in_bytes", "%d is negative (-1 means no limit)", swap)
	case swap > 0 && limit == 0:
		return nil, fieldErr(resField+"memory_swap_limit_in_bytes", "set without memory_limit_in_bytes")
	case swap > 0 && swap < limit:
		// The swap limit is memory plus swap, so it cannot be below the
		// memory limit.
		return nil, fieldErr(resField+"memory_swap_limit_in_bytes", "%d is below memory_limit_in_bytes %d", swap, limit)
	}
	if limit == 0 && swap == 0 {
		return nil, nil
	}
	mem := &specs.LinuxMemory{}
	if limit > 0 {
		mem.Limit = ptr(limit)
	}
	if swap != 0 {
		mem.Swap = ptr(swap)
	}
	return mem, nil
}

// checkCPUList checks the kernel's list format: "0-3,5,7".
func checkCPUList(s string) error {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return errors.New("not a list of numbers and ranges")
		}
		if !isRange {
			continue
		}
		b, err := strconv.ParseUint(hi, 10, 16)
		if err != nil || b < a {
			return errors.New("not a list of numbers and ranges")
		}
	}
	return nil
}

// oomScoreAdj checks the request's oom_score_adj. A daemon without
// CAP_SYS_RESOURCE cannot lower it below its own (0 when started
// normally): the kernel refuses and libcontainer then fails the start with
// a misleading "can't get final child's PID from pipe". So negative
// values (kubelet asks -997 for Guaranteed pods) become 0 there. That keeps
// kubelet's order among pods (Burstable containers get at least 2,
// BestEffort 1000) but no longer protects the container ahead of host
// processes left at 0.
func oomScoreAdj(v int64, canLower bool) (int, error) {
	if v < -1000 || v > 1000 {
		return 0, fieldErr(resField+"oom_score_adj", "%d is outside [-1000, 1000]", v)
	}
	if v < 0 && !canLower {
		return 0, nil
	}
	return int(v), nil
}
