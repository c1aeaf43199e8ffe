package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

// ContainerStats reports a container's CPU, memory and writable layer
// usage. Only a running container has CPU and memory numbers.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "must not be empty")
	}
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, notFound(err)
	}
	pod, err := s.store.Pod(c.PodID)
	if err != nil {
		return nil, notFound(err)
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(c, pod)}, nil
}

// ListContainerStats reports the stats of every container matching the
// filter: ID prefix, pod ID prefix and labels.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	pods := map[string]*store.Pod{}
	for _, p := range s.store.Pods() {
		pods[p.ID] = p
	}
	for _, c := range s.store.Containers("") {
		pod := pods[c.PodID]
		if pod == nil || !ctrStatsMatch(f, c, c.Config().GetLabels()) {
			continue
		}
		resp.Stats = append(resp.Stats, s.containerStats(c, pod))
	}
	return resp, nil
}

// PodSandboxStats reports a pod's usage: the sum of its running
// containers (berth's pod cgroup may be kubelet's, holding more than this
// pod), its network interfaces, and each running container's stats.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("pod_sandbox_id", "must not be empty")
	}
	pod, err := s.store.Pod(req.GetPodSandboxId())
	if err != nil {
		return nil, notFound(err)
	}
	if pod.Phase == store.PodCreating {
		return nil, status.Errorf(codes.NotFound, "pod %s not found", req.GetPodSandboxId())
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(pod)}, nil
}

// ListPodSandboxStats reports the stats of every pod matching the filter:
// ID prefix and labels.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, p := range s.store.Pods() {
		if p.Phase == store.PodCreating || !podStatsMatch(f, p, p.Config().GetLabels()) {
			continue
		}
		resp.Stats = append(resp.Stats, s.podStats(p))
	}
	return resp, nil
}

// notFound answers NotFound for an unknown ID; other errors pass.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	return err
}

func ctrStatsMatch(f *runtimeapi.ContainerStatsFilter, c *store.Container, labels map[string]string) bool {
	if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) {
		return false
	}
	if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.PodID, f.GetPodSandboxId()) {
		return false
	}
	return labelsMatch(labels, f.GetLabelSelector())
}

func podStatsMatch(f *runtimeapi.PodSandboxStatsFilter, p *store.Pod, labels map[string]string) bool {
	if f.GetId() != "" && !strings.HasPrefix(p.ID, f.GetId()) {
		return false
	}
	return labelsMatch(labels, f.GetLabelSelector())
}

func (s *Server) containerStats(c *store.Container, pod *store.Pod) *runtimeapi.ContainerStats {
	st, _ := s.containerStatsSample(c, pod)
	return st
}

// containerStatsSample builds a container's stats and returns its sample
// too (nil unless it runs), which podStats sums.
func (s *Server) containerStatsSample(c *store.Container, pod *store.Pod) (*runtimeapi.ContainerStats, *ctrSample) {
	cfg := c.Config()
	st := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id:          c.ID,
		Metadata:    cfg.GetMetadata(),
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
	}}
	if c.State != store.ContainerRunning {
		return st, nil
	}
	smp := s.stats.container(c, pod)
	if smp.cgOK {
		ts := smp.at.UnixNano()
		st.Cpu = &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: smp.cg.CPUUsageNanos}}
		if smp.hasRate {
			st.Cpu.UsageNanoCores = &runtimeapi.UInt64Value{Value: smp.rate}
		}
		st.Memory = memoryUsage(ts, smp.cg.MemoryUsage, smp.cg.MemoryWorkingSet, smp.cg.MemoryLimit)
	}
	if !smp.fsAt.IsZero() {
		st.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  smp.fsAt.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: smp.fs.mountpoint},
			UsedBytes:  &runtimeapi.UInt64Value{Value: smp.fs.bytes},
			InodesUsed: &runtimeapi.UInt64Value{Value: smp.fs.inodes},
		}
	}
	return st, smp
}

// memoryUsage is the CRI form of memory numbers; available is what the
// working set may still grow by under the limit, when there is one.
func memoryUsage(ts int64, usage, workingSet, limit uint64) *runtimeapi.MemoryUsage {
	m := &runtimeapi.MemoryUsage{
		Timestamp:       ts,
		UsageBytes:      &runtimeapi.UInt64Value{Value: usage},
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: workingSet},
	}
	if limit > 0 {
		var avail uint64
		if limit > workingSet {
			avail = limit - workingSet
		}
		m.AvailableBytes = &runtimeapi.UInt64Value{Value: avail}
	}
	return m
}

// podStats sums the pod's running containers and adds its network.
func (s *Server) podStats(pod *store.Pod) *runtimeapi.PodSandboxStats {
	cfg := pod.Config()
	linux := &runtimeapi.LinuxPodSandboxStats{}
	var sum podSum
	for _, c := range s.store.Containers(pod.ID) {
		if c.State != store.ContainerRunning {
			continue
		}
		st, smp := s.containerStatsSample(c, pod)
		linux.Containers = append(linux.Containers, st)
		if smp != nil && smp.cgOK {
			sum.add(smp)
		}
	}
	if sum.n > 0 {
		ts := sum.at.UnixNano()
		linux.Cpu = &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: sum.cpu}}
		if sum.rates == sum.n {
			linux.Cpu.UsageNanoCores = &runtimeapi.UInt64Value{Value: sum.rate}
		}
		linux.Memory = memoryUsage(ts, sum.usage, sum.workingSet, 0)
		linux.Process = &runtimeapi.ProcessUsage{Timestamp: ts, ProcessCount: &runtimeapi.UInt64Value{Value: sum.pids}}
	}
	if pod.Phase == store.PodReady {
		if n := s.stats.network(pod); n != nil {
			linux.Network = networkUsage(n.at.UnixNano(), n.ifaces)
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id:          pod.ID,
			Metadata:    cfg.GetMetadata(),
			Labels:      cfg.GetLabels(),
			Annotations: cfg.GetAnnotations(),
		},
		Linux: linux,
	}
}

// podSum adds up container samples into a pod's numbers.
type podSum struct {
	n, rates                     int
	at                           time.Time // the latest sample
	cpu, rate, usage, workingSet uint64
	pids                         uint64
}

func (p *podSum) add(smp *ctrSample) {
	p.n++
	if smp.at.After(p.at) {
		p.at = smp.at
	}
	p.cpu += smp.cg.CPUUsageNanos
	if smp.hasRate {
		p.rates++
		p.rate += smp.rate
	}
	p.usage += smp.cg.MemoryUsage
	p.workingSet += smp.cg.MemoryWorkingSet
	p.pids += smp.cg.Pids
}
