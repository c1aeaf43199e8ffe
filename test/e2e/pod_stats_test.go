package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodStats runs a pod whose one container fills 20 MB of memory and
// writes a 6 MB file into its root, and another that answers on port 8080,
// and checks what the stats RPCs and crictl report of them.
func TestPodStats(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("stats")
	pod := p.runPod(podCfg)
	// The loop keeps the shell (and x) alive: busybox sh would exec a
	// final plain command in its own place.
	hog := p.runCtr(pod, podCfg, ctrConfig("hog", "busybox", "sh", "-c",
		`head -c 6000000 /dev/zero > /big; x=$(head -c 20000000 /dev/zero | tr "\0" a); while :; do sleep 1000; done`))
	server := p.runCtr(pod, podCfg, ctrConfig("server", "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "hi"))

	// The writable layer is measured by the daemon's collector, every ten
	// seconds; the first ask samples at once, maybe before the file exists.
	var st *runtimeapi.ContainerStats
	if !waitUntil(25*time.Second, func() bool {
		resp, err := p.rt.ContainerStats(p.ctx(), &runtimeapi.ContainerStatsRequest{ContainerId: hog})
		if err != nil {
			t.Fatalf("ContainerStats: %v", err)
		}
		st = resp.Stats
		if st.GetMemory().GetWorkingSetBytes().GetValue() > 10e6 && st.GetCpu().GetUsageCoreNanoSeconds().GetValue() > 0 &&
			st.GetWritableLayer().GetUsedBytes().GetValue() >= 5e6 {
			return true
		}
		time.Sleep(200 * time.Millisecond)
		return false
	}) {
		t.Fatalf("ContainerStats %s within 25 s: %v", hog, st)
	}
	if st.GetAttributes().GetId() != hog || st.GetAttributes().GetMetadata().GetName() != "hog" || st.GetAttributes().GetLabels()["container"] != "hog" {
		t.Errorf("attributes %v", st.GetAttributes())
	}
	if st.GetMemory().GetUsageBytes().GetValue() < st.GetMemory().GetWorkingSetBytes().GetValue() {
		t.Errorf("memory usage below working set: %v", st.GetMemory())
	}
	if st.GetCpu().GetTimestamp() == 0 || st.GetMemory().GetTimestamp() == 0 || st.GetWritableLayer().GetTimestamp() == 0 {
		t.Errorf("zero timestamp: %v", st)
	}
	if st.GetWritableLayer().GetInodesUsed().GetValue() < 2 || st.GetWritableLayer().GetFsId().GetMountpoint() == "" {
		t.Errorf("writable layer %v", st.GetWritableLayer())
	}

	list := func(f *runtimeapi.ContainerStatsFilter) map[string]bool {
		t.Helper()
		resp, err := p.rt.ListContainerStats(p.ctx(), &runtimeapi.ListContainerStatsRequest{Filter: f})
		if err != nil {
			t.Fatalf("ListContainerStats %v: %v", f, err)
		}
		ids := map[string]bool{}
		for _, s := range resp.Stats {
			ids[s.GetAttributes().GetId()] = true
		}
		return ids
	}
	if ids := list(nil); !ids[hog] || !ids[server] {
		t.Errorf("ListContainerStats: %v, want %s and %s", ids, hog, server)
	}
	if ids := list(&runtimeapi.ContainerStatsFilter{PodSandboxId: pod}); len(ids) != 2 || !ids[hog] || !ids[server] {
		t.Errorf("ListContainerStats of pod %s: %v", pod, ids)
	}
	if ids := list(&runtimeapi.ContainerStatsFilter{PodSandboxId: pod, LabelSelector: map[string]string{"container": "hog"}}); len(ids) != 1 || !ids[hog] {
		t.Errorf("ListContainerStats by label: %v", ids)
	}
	if ids := list(&runtimeapi.ContainerStatsFilter{Id: server[:12]}); len(ids) != 1 || !ids[server] {
		t.Errorf("ListContainerStats by ID prefix: %v", ids)
	}
	if ids := list(&runtimeapi.ContainerStatsFilter{PodSandboxId: "f" + strings.Repeat("0", 63)}); len(ids) != 0 {
		t.Errorf("ListContainerStats of no pod: %v", ids)
	}

	// Traffic through eth0: the collector reads the pod's counters in its
	// network namespace.
	podIP := p.podStatus(pod).GetNetwork().GetIp()
	waitAnswer(t, net.JoinHostPort(podIP, "8080"), "hi", 10*time.Second)
	var ps *runtimeapi.PodSandboxStats
	if !waitUntil(25*time.Second, func() bool {
		resp, err := p.rt.PodSandboxStats(p.ctx(), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: pod})
		if err != nil {
			t.Fatalf("PodSandboxStats: %v", err)
		}
		ps = resp.Stats
		eth0 := ps.GetLinux().GetNetwork().GetDefaultInterface()
		if eth0.GetName() == "eth0" && (eth0.GetRxBytes().GetValue() > 0 || eth0.GetTxBytes().GetValue() > 0) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
		return false
	}) {
		t.Fatalf("PodSandboxStats %s: no traffic on eth0 within 25 s: %v", pod, ps)
	}
	lx := ps.GetLinux()
	if ps.GetAttributes().GetId() != pod || ps.GetAttributes().GetMetadata().GetName() != "stats" {
		t.Errorf("pod attributes %v", ps.GetAttributes())
	}
	if lx.GetProcess().GetProcessCount().GetValue() < 1 {
		t.Errorf("process count %v", lx.GetProcess())
	}
	if lx.GetMemory().GetWorkingSetBytes().GetValue() <= 10e6 || lx.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Errorf("pod cpu %v memory %v", lx.GetCpu(), lx.GetMemory())
	}
	for _, i := range lx.GetNetwork().GetInterfaces() {
		if i.GetName() == "lo" {
			t.Errorf("loopback among the pod's interfaces")
		}
	}
	if len(lx.GetContainers()) != 2 {
		t.Errorf("pod stats hold %d containers, want 2", len(lx.GetContainers()))
	}

	lp, err := p.rt.ListPodSandboxStats(p.ctx(), &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: pod}})
	if err != nil || len(lp.Stats) != 1 || lp.Stats[0].GetAttributes().GetId() != pod {
		t.Errorf("ListPodSandboxStats by ID: %v, %v", lp, err)
	}
	lp, err = p.rt.ListPodSandboxStats(p.ctx(), &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"test": "other"}}})
	if err != nil || len(lp.Stats) != 0 {
		t.Errorf("ListPodSandboxStats by a label no pod has: %v, %v", lp, err)
	}

	unknown := strings.Repeat("0", 64)
	_, err = p.rt.ContainerStats(p.ctx(), &runtimeapi.ContainerStatsRequest{ContainerId: unknown})
	wantCode(t, "ContainerStats of an unknown ID", err, codes.NotFound)
	_, err = p.rt.PodSandboxStats(p.ctx(), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: unknown})
	wantCode(t, "PodSandboxStats of an unknown ID", err, codes.NotFound)
	_, err = p.rt.ContainerStats(p.ctx(), &runtimeapi.ContainerStatsRequest{})
	wantCode(t, "ContainerStats without an ID", err, codes.InvalidArgument, "container_id")
	_, err = p.rt.PodSandboxStats(p.ctx(), &runtimeapi.PodSandboxStatsRequest{})
	wantCode(t, "PodSandboxStats without an ID", err, codes.InvalidArgument, "pod_sandbox_id")

	// crictl samples twice, a second apart, and wants fresh CPU numbers.
	out, err := p.crictl("stats", "--pod", pod)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, hog[:13]) || !strings.Contains(out, "hog") || !strings.Contains(out, "server") {
		t.Errorf("crictl stats does not list the containers:\n%s", out)
	}
	out, err = p.crictl("statsp", "--id", pod)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, pod[:13]) || !strings.Contains(out, "stats") {
		t.Errorf("crictl statsp does not list the pod:\n%s", out)
	}
}
