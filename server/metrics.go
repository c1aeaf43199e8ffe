package server

import (
	"context"
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
	mCPUUsage      = "container_cpu_usage_seconds_total"
	mMemoryUsage   = "container_memory_usage_bytes"
	mMemoryWorking = "container_memory_working_set_bytes"
	mProcesses     = "container_processes"
	mFsUsage       = "container_fs_usage_bytes"
	mNetRxBytes    = "container_network_receive_bytes_total"
	mNetTxBytes    = "container_network_transmit_bytes_total"
	mNetRxErrors   = "container_network_receive_errors_total"
	mNetTxErrors   = "container_network_transmit_errors_total"
	metricCounter  = runtimeapi.MetricType_COUNTER
	metricGauge    = runtimeapi.MetricType_GAUGE
	labelInterface = "interface"
	labelDevice    = "device"
	nanosPerSecond = uint64(time.Second)
)

// metricDefs are all the metrics berth emits, by name.
var metricDefs = map[string]metricDef{}

// metricOrder is metricDefs' names in the order descriptors are listed.
var metricOrder []string

func init() {
	for _, d := range []metricDef{
		{mCPUUsage, "Cumulative cpu time consumed in seconds.", metricCounter, nil},
		{mMemoryUsage, "Current memory usage in bytes, including all memory regardless of when it was accessed.", metricGauge, nil},
		{mMemoryWorking, "Current working set in bytes.", metricGauge, nil},
		{mProcesses, "Number of processes running inside the container.", metricGauge, nil},
		{mFsUsage, "Number of bytes that are consumed by the container on this filesystem.", metricGauge, []string{labelDevice}},
		{mNetRxBytes, "Cumulative count of bytes received.", metricCounter, []string{labelInterface}},
		{mNetTxBytes, "Cumulative count of bytes transmitted.", metricCounter, []string{labelInterface}},
		{mNetRxErrors, "Cumulative count of errors encountered while receiving.", metricCounter, []string{labelInterface}},
		{mNetTxErrors, "Cumulative count of errors encountered while transmitting.", metricCounter, []string{labelInterface}},
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
// network at pod level, CPU, memory, processes and writable layer per
// running container. Only the collector's cached samples are used, since
// kubelet scrapes every pod at once and a directory walk or namespace
// visit per pod would make the scrape as slow as the node is full; a
// container or pod the collector has not sampled yet has no metrics.
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
	if n := s.stats.cachedNetwork(pod.ID); n != nil {
		pm.Metrics = networkMetrics(n, podBase)
	}
	for _, c := range s.store.Containers(pod.ID) {
		if c.State != store.ContainerRunning {
			continue
		}
		smp := s.stats.cachedContainer(c.ID)
		if smp == nil {
			continue
		}
		base := []string{c.ID, c.Config().GetMetadata().GetName(), c.ImageRef}
		pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{
			ContainerId: c.ID,
			Metrics:     containerMetrics(smp, base),
		})
	}
	return pm
}

// containerMetrics turns a container's sample into metrics labelled base.
// CPU time is whole seconds: the value is an integer and kubelet passes it
// on unscaled, so nanoseconds would read as a billion times too much.
func containerMetrics(smp *ctrSample, base []string) []*runtimeapi.Metric {
	var out []*runtimeapi.Metric
	if smp.cgOK {
		out = append(out,
			newMetric(mCPUUsage, smp.at, smp.cg.CPUUsageNanos/nanosPerSecond, base),
			newMetric(mMemoryUsage, smp.at, smp.cg.MemoryUsage, base),
			newMetric(mMemoryWorking, smp.at, smp.cg.MemoryWorkingSet, base),
			newMetric(mProcesses, smp.at, smp.cg.Pids, base),
		)
	}
	if !smp.fsAt.IsZero() {
		out = append(out, newMetric(mFsUsage, smp.fsAt, smp.fs.bytes, base, smp.fs.mountpoint))
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
			newMetric(mNetRxErrors, n.at, i.rxErrors, base, i.name),
			newMetric(mNetTxErrors, n.at, i.txErrors, base, i.name),
		)
	}
	return out
}

// cachedContainer is a copy of the container's last sample, nil if none.
func (c *statsCollector) cachedContainer(id string) *ctrSample {
	c.mu.Lock()
	defer c.mu.Unlock()
	smp := c.ctrs[id]
	if smp == nil {
		return nil
	}
	cp := *smp
	return &cp
}

// cachedNetwork is the pod's last network sample, nil if none. Samples
// are replaced, never changed, so sharing one is safe.
func (c *statsCollector) cachedNetwork(podID string) *podNetSample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nets[podID]
}
