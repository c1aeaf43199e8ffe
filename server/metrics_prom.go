package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/pkg/metrics"
	"github.com/berth-runtime/berth/server/store"
)

// This file serves the Prometheus figures that are read from the pod and
// container records when scraped: nothing polls, and a scrape costs one
// pass over the records in memory. (metrics.go is another thing: the CRI
// ListPodSandboxMetrics RPCs.)

// kubelet's CFS period when it sets a quota, and the kernel's default: a
// quota recorded without a period is enforced against this one.
const cfsPeriodDefault = 100000

// podPhases and containerStates are every value the records hold, so that
// each series exists (at 0) before the first pod or container does.
var (
	podPhases       = []string{store.PodCreating, store.PodReady, store.PodStopped}
	containerStates = []string{store.ContainerCreated, store.ContainerRunning, store.ContainerExited, store.ContainerUnknown}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", name), help, labels, nil)
}

var (
	podsDesc       = desc("pods", "Pod sandboxes by phase in berthd's records: creating (RunPodSandbox in progress), ready, stopped.", "state")
	containersDesc = desc("containers", "Containers by state in berthd's records (as of the last status, list or start call): created, running, exited, unknown.", "state")
	cpuRequestDesc = desc("running_containers_cpu_request_cores",
		"Sum over running containers of the CPU they request, in cores, derived from cpu_shares as kubelet derives shares from requests (cores = shares/1024). kubelet gives a container without a CPU request 2 shares (0.002 cores). Containers with no cpu_shares add nothing (see berth_running_containers_unspecified).")
	cpuLimitDesc = desc("running_containers_cpu_limit_cores",
		"Sum over running containers of their CPU limit in cores (cpu_quota/cpu_period; a quota without a period is taken against the kernel's default 100 ms). Containers without a limit add nothing (see berth_running_containers_unspecified).")
	memRequestDesc = desc("running_containers_memory_request_bytes",
		"Sum over running containers of the memory they request, in bytes. CRI carries no memory request on cgroup v1: kubelet passes it only as unified memory.min, with its MemoryQoS feature on cgroup v2. This is the sum of those; containers without one add nothing (see berth_running_containers_unspecified).")
	memLimitDesc = desc("running_containers_memory_limit_bytes",
		"Sum over running containers of their memory limit in bytes (memory_limit_in_bytes, else unified memory.max). Containers without a limit add nothing (see berth_running_containers_unspecified).")
	unspecifiedDesc = desc("running_containers_unspecified",
		"Running containers whose configuration gives no value for a resource (cpu_request, cpu_limit, memory_request, memory_limit), so that they add nothing to its sum: unlimited, or a request CRI did not carry.", "resource")
)

// promCollector computes pods and containers by state and the node's
// resource accounting from the records at scrape time.
type promCollector struct {
	store *store.Store
}

// PromCollector returns the collector of the record-based figures, for the
// metrics registry.
func (s *Server) PromCollector() prometheus.Collector { return &promCollector{store: s.store} }

func (c *promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{podsDesc, containersDesc, cpuRequestDesc, cpuLimitDesc, memRequestDesc, memLimitDesc, unspecifiedDesc} {
		ch <- d
	}
}

func (c *promCollector) Collect(ch chan<- prometheus.Metric) {
	pods := map[string]int{}
	for _, p := range c.store.Pods() {
		pods[p.Phase]++
	}
	for _, phase := range podPhases {
		ch <- prometheus.MustNewConstMetric(podsDesc, prometheus.GaugeValue, float64(pods[phase]), phase)
	}

	ctrs := c.store.Containers("")
	states := map[string]int{}
	var running []*runtimeapi.LinuxContainerResources
	for _, ctr := range ctrs {
		states[ctr.State]++
		if ctr.State == store.ContainerRunning {
			// As last resized (UpdateContainerResources), else as created.
			running = append(running, containerResources(ctr))
		}
	}
	for _, st := range containerStates {
		ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(states[st]), st)
	}

	t := sumResources(running)
	ch <- prometheus.MustNewConstMetric(cpuRequestDesc, prometheus.GaugeValue, t.CPURequest)
	ch <- prometheus.MustNewConstMetric(cpuLimitDesc, prometheus.GaugeValue, t.CPULimit)
	ch <- prometheus.MustNewConstMetric(memRequestDesc, prometheus.GaugeValue, float64(t.MemoryRequest))
	ch <- prometheus.MustNewConstMetric(memLimitDesc, prometheus.GaugeValue, float64(t.MemoryLimit))
	for _, u := range []struct {
		name string
		n    int
	}{{"cpu_request", t.NoCPURequest}, {"cpu_limit", t.NoCPULimit}, {"memory_request", t.NoMemoryRequest}, {"memory_limit", t.NoMemoryLimit}} {
		ch <- prometheus.MustNewConstMetric(unspecifiedDesc, prometheus.GaugeValue, float64(u.n), u.name)
	}
}

// resourceTotals is R = Σ rᵢ over running containers, with a count of the
// containers that gave no value for each resource.
type resourceTotals struct {
	CPURequest, CPULimit       float64 // cores
	MemoryRequest, MemoryLimit int64   // bytes

	NoCPURequest, NoCPULimit, NoMemoryRequest, NoMemoryLimit int
}

// sumResources adds up the requests and limits of the given containers'
// resources (nil for a container that gave none).
func sumResources(all []*runtimeapi.LinuxContainerResources) resourceTotals {
	var t resourceTotals
	for _, r := range all {
		if v, ok := cpuRequestCores(r); ok {
			t.CPURequest += v
		} else {
			t.NoCPURequest++
		}
		if v, ok := cpuLimitCores(r); ok {
			t.CPULimit += v
		} else {
			t.NoCPULimit++
		}
		if v, ok := unifiedBytes(r, "memory.min"); ok {
			t.MemoryRequest += v
		} else {
			t.NoMemoryRequest++
		}
		if v, ok := memoryLimitBytes(r); ok {
			t.MemoryLimit += v
		} else {
			t.NoMemoryLimit++
		}
	}
	return t
}

// cpuRequestCores inverts kubelet's shares = milliCPU*1024/1000.
func cpuRequestCores(r *runtimeapi.LinuxContainerResources) (float64, bool) {
	if s := r.GetCpuShares(); s > 0 {
		return float64(s) / 1024, true
	}
	return 0, false
}

// cpuLimitCores is quota/period; a quota of -1 (or none) is no limit.
func cpuLimitCores(r *runtimeapi.LinuxContainerResources) (float64, bool) {
	q, p := r.GetCpuQuota(), r.GetCpuPeriod()
	if q <= 0 {
		return 0, false
	}
	if p <= 0 {
		p = cfsPeriodDefault
	}
	return float64(q) / float64(p), true
}

func memoryLimitBytes(r *runtimeapi.LinuxContainerResources) (int64, bool) {
	if m := r.GetMemoryLimitInBytes(); m > 0 {
		return m, true
	}
	return unifiedBytes(r, "memory.max")
}

// unifiedBytes reads a cgroup v2 byte value from the unified map; "max" and
// anything not a positive number are no value.
func unifiedBytes(r *runtimeapi.LinuxContainerResources, key string) (int64, bool) {
	v, err := strconv.ParseInt(r.GetUnified()[key], 10, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}
