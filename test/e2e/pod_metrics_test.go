package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodMetrics runs a pod whose container burns a few seconds of CPU
// (the CPU counter is in whole seconds) and answers on port 8080, and
// checks the metrics RPCs report it from the collector's samples.
func TestPodMetrics(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("metrics")
	pod := p.runPod(podCfg)
	ctr := p.runCtr(pod, podCfg, ctrConfig("burn", "busybox", "sh", "-c",
		`yes > /dev/null & y=$!; sleep 3; kill $y; nc -ll -p 8080 -e echo hi`))

	descs, err := p.rt.ListMetricDescriptors(p.ctx(), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatalf("ListMetricDescriptors: %v", err)
	}
	keys := map[string][]string{}
	for _, d := range descs.GetDescriptors() {
		keys[d.GetName()] = d.GetLabelKeys()
	}
	for _, n := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_network_receive_bytes_total"} {
		if keys[n] == nil {
			t.Fatalf("no descriptor %s among %v", n, keys)
		}
	}

	podIP := p.podStatus(pod).GetNetwork().GetIp()
	waitAnswer(t, net.JoinHostPort(podIP, "8080"), "hi", 15*time.Second)

	// value finds a metric by name and, if iface is set, its interface
	// label (the last one), after checking its labels match the keys.
	value := func(ms []*runtimeapi.Metric, name, iface string) (uint64, bool) {
		for _, m := range ms {
			k, ok := keys[m.GetName()]
			if !ok || len(k) != len(m.GetLabelValues()) {
				t.Errorf("metric %v does not match its descriptor %v", m, k)
				continue
			}
			if m.GetName() != name || (iface != "" && m.GetLabelValues()[len(k)-1] != iface) {
				continue
			}
			return m.GetValue().GetValue(), true
		}
		return 0, false
	}
	check := func(pms []*runtimeapi.PodSandboxMetrics) string {
		for _, pm := range pms {
			if pm.GetPodSandboxId() != pod {
				continue
			}
			rx, _ := value(pm.GetMetrics(), "container_network_receive_bytes_total", "eth0")
			tx, _ := value(pm.GetMetrics(), "container_network_transmit_bytes_total", "eth0")
			if rx == 0 && tx == 0 {
				return "no eth0 traffic"
			}
			for _, cm := range pm.GetContainerMetrics() {
				if cm.GetContainerId() != ctr {
					continue
				}
				cpu, _ := value(cm.GetMetrics(), "container_cpu_usage_seconds_total", "")
				ws, _ := value(cm.GetMetrics(), "container_memory_working_set_bytes", "")
				if cpu == 0 || ws == 0 {
					return "no cpu or memory"
				}
				return ""
			}
			return "container missing"
		}
		return "pod missing"
	}

	var last *runtimeapi.ListPodSandboxMetricsResponse
	why := ""
	if !waitUntil(25*time.Second, func() bool {
		resp, err := p.rt.ListPodSandboxMetrics(p.ctx(), &runtimeapi.ListPodSandboxMetricsRequest{})
		if err != nil {
			t.Fatalf("ListPodSandboxMetrics: %v", err)
		}
		last = resp
		if why = check(resp.GetPodMetrics()); why == "" {
			return true
		}
		time.Sleep(500 * time.Millisecond)
		return false
	}) {
		t.Fatalf("ListPodSandboxMetrics within 25 s: %s: %v", why, last)
	}

	stream, err := p.rt.StreamPodSandboxMetrics(p.ctx(), &runtimeapi.StreamPodSandboxMetricsRequest{})
	pms := drain(t, stream, err, func(m *runtimeapi.StreamPodSandboxMetricsResponse) []*runtimeapi.PodSandboxMetrics {
		return m.GetPodSandboxMetrics()
	})
	if why := check(pms); why != "" {
		t.Errorf("StreamPodSandboxMetrics: %s: %v", why, pms)
	}
}

// TestPodMetricsRightAfterStart lists the metrics of a container that just
// started, before the collector's first round: kubelet (and critest) scrape
// whenever they like, and every series a descriptor names must be there,
// the container's resource settings among them.
func TestPodMetricsRightAfterStart(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("metrics-now")
	pod := p.runPod(podCfg)
	cfg := ctrConfig("sleeper", "busybox", "sleep", "3600")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 1024, MemoryLimitInBytes: 64 << 20,
	}
	ctr := p.runCtr(pod, podCfg, cfg)
	// A start returns once the init has let go of its exec FIFO, which it
	// does just before it execs the command (runc's start does the same):
	// until then the init is a Go process with more than one thread. The
	// figures below are those of the command.
	pid := int(p.ctrInfo(ctr)["pid"].(float64))
	if !waitUntil(5*time.Second, func() bool {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(comm)) == "sleep"
	}) {
		t.Fatalf("container process %d never became sleep", pid)
	}

	resp, err := p.rt.ListPodSandboxMetrics(p.ctx(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, pm := range resp.GetPodMetrics() {
		if pm.GetPodSandboxId() != pod {
			continue
		}
		for _, m := range pm.GetMetrics() {
			got[m.GetName()] = m.GetValue().GetValue()
		}
		for _, cm := range pm.GetContainerMetrics() {
			if cm.GetContainerId() == ctr {
				for _, m := range cm.GetMetrics() {
					got[m.GetName()] = m.GetValue().GetValue()
				}
			}
		}
	}
	// Every descriptor has a series, but block I/O, which a host may not
	// account for the disk under the writable layer.
	descs, err := p.rt.ListMetricDescriptors(p.ctx(), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	optional := map[string]bool{
		"container_blkio_device_usage_total": true, "container_fs_reads_bytes_total": true, "container_fs_reads_total": true,
		"container_fs_writes_bytes_total": true, "container_fs_writes_total": true,
	}
	for _, d := range descs.GetDescriptors() {
		if _, ok := got[d.GetName()]; !ok && !optional[d.GetName()] {
			t.Errorf("no %s for a container that just started", d.GetName())
		}
	}
	for name, want := range map[string]uint64{
		"container_spec_cpu_period":         100000,
		"container_spec_cpu_quota":          20000,
		"container_spec_cpu_shares":         1024,
		"container_spec_memory_limit_bytes": 64 << 20,
		"container_processes":               1,
		"container_threads":                 1,
	} {
		if got[name] != want {
			t.Errorf("%s = %d, want %d", name, got[name], want)
		}
	}
	if got["container_file_descriptors"] < 3 || got["container_fs_inodes_total"] == 0 || got["container_start_time_seconds"] < uint64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("file descriptors %d, inodes %d, start time %d", got["container_file_descriptors"], got["container_fs_inodes_total"], got["container_start_time_seconds"])
	}
}
