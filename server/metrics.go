package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

// The metrics RPCs feed kubelet's /metrics/cadvisor when it takes pod and
// container stats from the runtime: kubelet turns each descriptor into a
// Prometheus series as is, so names, types and labels follow cadvisor's
// to keep dashboards and alerts that query cadvisor working.

// metricBaseLabels are the labels every series carries, as CRI-O sends
// them: the container's (or pod's) ID, its name and its image.
var metricBaseLabels = []string{"id", "name", "image"}

// metricDef is one metric berth emits.
type metricDef struct {
	name  string
	help  string
	typ   runtimeapi.MetricType
	extra []string // label keys after metricBaseLabels
}

const (
	mCPUUsage            = "container_cpu_usage_seconds_total"
	mCPUUser             = "container_cpu_user_seconds_total"
	mCPUSystem           = "container_cpu_system_seconds_total"
	mCPUPeriods          = "container_cpu_cfs_periods_total"
	mCPUThrottledPeriods = "container_cpu_cfs_throttled_periods_total"
	mCPUThrottledSeconds = "container_cpu_cfs_throttled_seconds_total"
	mMemoryUsage         = "container_memory_usage_bytes"
	mMemoryWorking       = "container_memory_working_set_bytes"
	mMemoryCache         = "container_memory_cache"
	mMemoryRSS           = "container_memory_rss"
	mMemoryMappedFile    = "container_memory_mapped_file"
	mMemorySwap          = "container_memory_swap"
	mMemoryKernel        = "container_memory_kernel_usage"
	mMemoryMaxUsage      = "container_memory_max_usage_bytes"
	mMemoryFailcnt       = "container_memory_failcnt"
	mMemoryFailures      = "container_memory_failures_total"
	mOOMEvents           = "container_oom_events_total"
	mProcesses           = "container_processes"
	mThreads             = "container_threads"
	mThreadsMax          = "container_threads_max"
	mFileDescriptors     = "container_file_descriptors"
	mSockets             = "container_sockets"
	mFsUsage             = "container_fs_usage_bytes"
	mFsLimit             = "container_fs_limit_bytes"
	mFsInodesTotal       = "container_fs_inodes_total"
	mFsInodesFree        = "container_fs_inodes_free"
	mFsReadsBytes        = "container_fs_reads_bytes_total"
	mFsReads             = "container_fs_reads_total"
	mFsWritesBytes       = "container_fs_writes_bytes_total"
	mFsWrites            = "container_fs_writes_total"
	mBlkioUsage          = "container_blkio_device_usage_total"
	mSpecCPUPeriod       = "container_spec_cpu_period"
	mSpecCPUQuota        = "container_spec_cpu_quota"
	mSpecCPUShares       = "container_spec_cpu_shares"
	mSpecMemoryLimit     = "container_spec_memory_limit_bytes"
	mSpecMemorySwapLimit = "container_spec_memory_swap_limit_bytes"
	mStartTime           = "container_start_time_seconds"
	mLastSeen            = "container_last_seen"
	mNetRxBytes          = "container_network_receive_bytes_total"
	mNetTxBytes          = "container_network_transmit_bytes_total"
	mNetRxPackets        = "container_network_receive_packets_total"
	mNetTxPackets        = "container_network_transmit_packets_total"
	mNetRxDropped        = "container_network_receive_packets_dropped_total"
	mNetTxDropped        = "container_network_transmit_packets_dropped_total"
	mNetRxErrors         = "container_network_receive_errors_total"
	mNetTxErrors         = "container_network_transmit_errors_total"
	metricCounter        = runtimeapi.MetricType_COUNTER
	metricGauge          = runtimeapi.MetricType_GAUGE
	labelInterface       = "interface"
	labelDevice          = "device"
	nanosPerSecond       = uint64(time.Second)
)

// metricDefs are all the metrics berth emits, by name.
var metricDefs = map[string]metricDef{}

// metricOrder is metricDefs' names in the order descriptors are listed.
var metricOrder []string

func init() {
	iface := []string{labelInterface}
	dev := []string{labelDevice}
	for _, d := range []metricDef{
		{mCPUUsage, "Cumulative cpu time consumed in seconds.", metricCounter, nil},
		{mCPUUser, "Cumulative user cpu time consumed in seconds.", metricCounter, nil},
		{mCPUSystem, "Cumulative system cpu time consumed in seconds.", metricCounter, nil},
		{mCPUPeriods, "Number of elapsed enforcement period intervals.", metricCounter, nil},
		{mCPUThrottledPeriods, "Number of throttled period intervals.", metricCounter, nil},
		{mCPUThrottledSeconds, "Total time duration the container has been throttled, in seconds.", metricCounter, nil},
		{mMemoryUsage, "Current memory usage in bytes, including all memory regardless of when it was accessed.", metricGauge, nil},
		{mMemoryWorking, "Current working set in bytes.", metricGauge, nil},
		{mMemoryCache, "Number of bytes of page cache memory.", metricGauge, nil},
		{mMemoryRSS, "Size of RSS in bytes.", metricGauge, nil},
		{mMemoryMappedFile, "Size of memory mapped files in bytes.", metricGauge, nil},
		{mMemorySwap, "Container swap usage in bytes.", metricGauge, nil},
		{mMemoryKernel, "Size of kernel memory allocated in bytes.", metricGauge, nil},
		{mMemoryMaxUsage, "Maximum memory usage recorded in bytes.", metricGauge, nil},
		{mMemoryFailcnt, "Number of memory usage hits limits.", metricCounter, nil},
		{mMemoryFailures, "Cumulative count of memory allocation failures.", metricCounter, []string{"failure_type", "scope"}},
		{mOOMEvents, "Count of out of memory events observed for the container.", metricCounter, nil},
		{mProcesses, "Number of processes running inside the container.", metricGauge, nil},
		{mThreads, "Number of threads running inside the container.", metricGauge, nil},
		{mThreadsMax, "Maximum number of threads allowed inside the container, zero when unlimited.", metricGauge, nil},
		{mFileDescriptors, "Number of open file descriptors for the container.", metricGauge, nil},
		{mSockets, "Number of open sockets for the container.", metricGauge, nil},
		{mFsUsage, "Number of bytes that are consumed by the container on this filesystem.", metricGauge, dev},
		{mFsLimit, "Number of bytes that can be consumed by the container on this filesystem.", metricGauge, dev},
		{mFsInodesTotal, "Number of Inodes.", metricGauge, dev},
		{mFsInodesFree, "Number of available Inodes.", metricGauge, dev},
		{mFsReadsBytes, "Cumulative count of bytes read.", metricCounter, dev},
		{mFsReads, "Cumulative count of reads completed.", metricCounter, dev},
		{mFsWritesBytes, "Cumulative count of bytes written.", metricCounter, dev},
		{mFsWrites, "Cumulative count of writes completed.", metricCounter, dev},
		{mBlkioUsage, "Blkio device bytes usage.", metricCounter, []string{labelDevice, "major", "minor", "operation"}},
		{mSpecCPUPeriod, "CPU period of the container.", metricGauge, nil},
		{mSpecCPUQuota, "CPU quota of the container.", metricGauge, nil},
		{mSpecCPUShares, "CPU share of the container.", metricGauge, nil},
		{mSpecMemoryLimit, "Memory limit for the container.", metricGauge, nil},
		{mSpecMemorySwapLimit, "Memory swap limit for the container.", metricGauge, nil},
		{mStartTime, "Start time of the container since unix epoch in seconds.", metricGauge, nil},
		{mLastSeen, "Last time a container was seen by the exporter.", metricGauge, nil},
		{mNetRxBytes, "Cumulative count of bytes received.", metricCounter, iface},
		{mNetTxBytes, "Cumulative count of bytes transmitted.", metricCounter, iface},
		{mNetRxPackets, "Cumulative count of packets received.", metricCounter, iface},
		{mNetTxPackets, "Cumulative count of packets transmitted.", metricCounter, iface},
		{mNetRxDropped, "Cumulative count of packets dropped while receiving.", metricCounter, iface},
		{mNetTxDropped, "Cumulative count of packets dropped while transmitting.", metricCounter, iface},
		{mNetRxErrors, "Cumulative count of errors encountered while receiving.", metricCounter, iface},
		{mNetTxErrors, "Cumulative count of errors encountered while transmitting.", metricCounter, iface},
	} {
		metricDefs[d.name] = d
		metricOrder = append(metricOrder, d.name)
	}
}

// labelKeys are a metric's label keys, the base ones first.
func (d metricDef) labelKeys() []string {
	return append(append([]string(nil), metricBaseLabels...), d.extra...)
}

// newMetric builds a metric whose label values are base then extra, in
// the order of its descriptor's keys. An unknown name panics: every name
// used must be listed by ListMetricDescriptors, or kubelet drops it.
func newMetric(name string, at time.Time, value uint64, base []string, extra ...string) *runtimeapi.Metric {
	d, ok := metricDefs[name]
	if !ok {
		panic("metric without a descriptor: " + name)
	}
	return &runtimeapi.Metric{
		Name:        name,
		Timestamp:   at.UnixNano(),
		MetricType:  d.typ,
		LabelValues: append(append([]string(nil), base...), extra...),
		Value:       &runtimeapi.UInt64Value{Value: value},
	}
}

// ListMetricDescriptors lists the metrics ListPodSandboxMetrics emits.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: metricDescriptors()}, nil
}

func metricDescriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricOrder))
	for _, n := range metricOrder {
		d := metricDefs[n]
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: d.labelKeys()})
	}
	return out
}

// ListPodSandboxMetrics reports the metrics of every ready pod: its
// network at pod level, CPU, memory, processes, descriptors, disk and
// resource settings per running container. The collector's cached samples
// are used, since kubelet scrapes every pod at once and a directory walk
// or namespace visit per pod would make the scrape as slow as the node is
// full; only a container or pod the collector has not sampled yet (just
// started) is sampled here, once.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, pod := range s.store.Pods() {
		if pod.Phase != store.PodReady {
			continue
		}
		resp.PodMetrics = append(resp.PodMetrics, s.podMetrics(pod))
	}
	return resp, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in chunks.
func (s *Server) StreamPodSandboxMetrics(req *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	resp, err := s.ListPodSandboxMetrics(stream.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		return err
	}
	return sendChunks(resp.PodMetrics, func(c []*runtimeapi.PodSandboxMetrics) *runtimeapi.StreamPodSandboxMetricsResponse {
		return &runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: c}
	}, stream.Send)
}

func (s *Server) podMetrics(pod *store.Pod) *runtimeapi.PodSandboxMetrics {
	pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: pod.ID}
	podBase := []string{pod.ID, pod.Config().GetMetadata().GetName(), ""}
	if n := s.stats.network(pod); n != nil {
		pm.Metrics = networkMetrics(n, podBase)
	}
	for _, c := range s.store.Containers(pod.ID) {
		if c.State != store.ContainerRunning {
			continue
		}
		smp := s.stats.sampled(c, pod)
		base := []string{c.ID, c.Config().GetMetadata().GetName(), c.ImageRef}
		ms := containerMetrics(smp, base)
		ms = append(ms, specMetrics(containerResources(c), smp.at, base)...)
		if !c.StartedAt.IsZero() {
			ms = append(ms, newMetric(mStartTime, smp.at, uint64(c.StartedAt.Unix()), base))
		}
		pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: ms})
	}
	return pm
}

// containerMetrics turns a container's sample into metrics labelled base.
// Times are whole seconds: the value is an integer and kubelet passes it
// on unscaled, so nanoseconds would read as a billion times too much.
func containerMetrics(smp *ctrSample, base []string) []*runtimeapi.Metric {
	var out []*runtimeapi.Metric
	if smp.cgOK {
		cg, at := smp.cg, smp.at
		m := func(name string, v uint64, extra ...string) {
			out = append(out, newMetric(name, at, v, base, extra...))
		}
		m(mCPUUsage, cg.CPUUsageNanos/nanosPerSecond)
		m(mCPUUser, cg.CPUUserNanos/nanosPerSecond)
		m(mCPUSystem, cg.CPUSystemNanos/nanosPerSecond)
		m(mCPUPeriods, cg.CPUPeriods)
		m(mCPUThrottledPeriods, cg.CPUThrottledPeriods)
		m(mCPUThrottledSeconds, cg.CPUThrottledNanos/nanosPerSecond)
		m(mMemoryUsage, cg.MemoryUsage)
		m(mMemoryWorking, cg.MemoryWorkingSet)
		m(mMemoryCache, cg.MemoryCache)
		m(mMemoryRSS, cg.MemoryRSS)
		m(mMemoryMappedFile, cg.MemoryMappedFile)
		m(mMemorySwap, cg.MemorySwap)
		m(mMemoryKernel, cg.MemoryKernel)
		m(mMemoryMaxUsage, cg.MemoryMaxUsage)
		m(mMemoryFailcnt, cg.MemoryFailcnt)
		m(mMemoryFailures, cg.PgFault, "pgfault", "container")
		m(mMemoryFailures, cg.PgMajFault, "pgmajfault", "container")
		m(mMemoryFailures, cg.TotalPgFault, "pgfault", "hierarchy")
		m(mMemoryFailures, cg.TotalPgMajFault, "pgmajfault", "hierarchy")
		m(mOOMEvents, cg.OOMKills)
		m(mThreads, cg.Pids)
		m(mThreadsMax, cg.PidsLimit)
		m(mLastSeen, uint64(at.Unix()))
	}
	if !smp.fsAt.IsZero() {
		at, dev := smp.fsAt, smp.fs.mountpoint
		m := func(name string, v uint64, extra ...string) {
			out = append(out, newMetric(name, at, v, base, extra...))
		}
		m(mFsUsage, smp.fs.bytes, dev)
		if smp.fs.fsBytes > 0 {
			m(mFsLimit, smp.fs.fsBytes, dev)
			m(mFsInodesTotal, smp.fs.fsInodes, dev)
			m(mFsInodesFree, smp.fs.fsInodesFree, dev)
		}
		m(mProcesses, smp.procs.processes)
		m(mFileDescriptors, smp.procs.fds)
		m(mSockets, smp.procs.sockets)
		for _, io := range smp.io {
			device := fmt.Sprintf("%d:%d", io.Major, io.Minor)
			major, minor := strconv.FormatUint(io.Major, 10), strconv.FormatUint(io.Minor, 10)
			m(mBlkioUsage, io.ReadBytes, device, major, minor, "Read")
			m(mBlkioUsage, io.WriteBytes, device, major, minor, "Write")
			m(mFsReadsBytes, io.ReadBytes, device)
			m(mFsWritesBytes, io.WriteBytes, device)
			m(mFsReads, io.Reads, device)
			m(mFsWrites, io.Writes, device)
		}
	}
	return out
}

// specMetrics are the container's resource settings, as cadvisor reports
// them from its cgroup: 0 where nothing is set (no quota is left out).
func specMetrics(r *runtimeapi.LinuxContainerResources, at time.Time, base []string) []*runtimeapi.Metric {
	nonNeg := func(v int64) uint64 { return uint64(max(v, 0)) }
	out := []*runtimeapi.Metric{
		newMetric(mSpecCPUPeriod, at, nonNeg(r.GetCpuPeriod()), base),
		newMetric(mSpecCPUShares, at, nonNeg(r.GetCpuShares()), base),
		newMetric(mSpecMemoryLimit, at, nonNeg(r.GetMemoryLimitInBytes()), base),
		newMetric(mSpecMemorySwapLimit, at, nonNeg(r.GetMemorySwapLimitInBytes()), base),
	}
	if q := r.GetCpuQuota(); q > 0 {
		out = append(out, newMetric(mSpecCPUQuota, at, uint64(q), base))
	}
	return out
}

// networkMetrics turns a pod's network sample into metrics labelled base
// and the interface; loopback is left out as networkUsage leaves it out.
func networkMetrics(n *podNetSample, base []string) []*runtimeapi.Metric {
	var out []*runtimeapi.Metric
	for _, i := range n.ifaces {
		if i.name == "lo" {
			continue
		}
		out = append(out,
			newMetric(mNetRxBytes, n.at, i.rxBytes, base, i.name),
			newMetric(mNetTxBytes, n.at, i.txBytes, base, i.name),
			newMetric(mNetRxPackets, n.at, i.rxPackets, base, i.name),
			newMetric(mNetTxPackets, n.at, i.txPackets, base, i.name),
			newMetric(mNetRxDropped, n.at, i.rxDropped, base, i.name),
			newMetric(mNetTxDropped, n.at, i.txDropped, base, i.name),
			newMetric(mNetRxErrors, n.at, i.rxErrors, base, i.name),
			newMetric(mNetTxErrors, n.at, i.txErrors, base, i.name),
		)
	}
	return out
}
