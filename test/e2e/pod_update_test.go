package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// readCgroupV1 reads a file of the cgroup at p on a v1 controller.
func readCgroupV1(t *testing.T, controller, p, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, p, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestUpdateResources resizes a running container and its pod in place,
// and checks the cgroup files, ContainerStatus, a berthd restart, and the
// refusals: bad values, unknown IDs, a limit below usage, an exited
// container.
func TestUpdateResources(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("reads cgroup v1 files")
	}
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("resize")
	pod := p.runPod(podCfg)
	cfg := ctrConfig("app", "busybox", "sleep", "100000")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, CpusetCpus: "0"}
	app := p.runCtr(pod, podCfg, cfg)
	podCg := p.cgroup + "/pods/" + pod
	if got := p.podInfo(pod)["cgroup"]; got != podCg {
		t.Fatalf("pod cgroup %v, want %s", got, podCg)
	}
	appCg := podCg + "/" + app
	files := func(cg string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			controller, file, _ := strings.Cut(k, "/")
			if got := readCgroupV1(t, controller, cg, file); got != v {
				t.Errorf("%s of %s: %s, want %s", file, cg, got, v)
			}
		}
	}
	files(appCg, map[string]string{"memory/memory.limit_in_bytes": "67108864", "cpu/cpu.cfs_quota_us": "50000", "cpuset/cpuset.cpus": "0"})
	pids := readCgroupV1(t, "pids", appCg, "pids.max")

	cpus := "0-1"
	if runtime.NumCPU() < 2 {
		cpus = "0"
	}
	update := func(id string, r *runtimeapi.LinuxContainerResources) error {
		_, err := p.rt.UpdateContainerResources(p.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: r})
		return err
	}
	if err := update(app, &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 256, MemoryLimitInBytes: 128 << 20, CpusetCpus: cpus}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	after := map[string]string{
		"memory/memory.limit_in_bytes": "134217728", "cpu/cpu.cfs_quota_us": "20000", "cpu/cpu.cfs_period_us": "100000",
		"cpu/cpu.shares": "256", "cpuset/cpuset.cpus": cpus,
		"pids/pids.max": pids, // CRI has no container pids limit: unchanged
	}
	files(appCg, after)

	// Only the memory: the rest stays.
	if err := update(app, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20}); err != nil {
		t.Fatalf("UpdateContainerResources (memory only): %v", err)
	}
	after["memory/memory.limit_in_bytes"] = "100663296"
	files(appCg, after)
	wantStatus := func(when string) {
		t.Helper()
		r := p.ctrStatus(app).GetResources().GetLinux()
		if r.GetMemoryLimitInBytes() != 96<<20 || r.GetCpuQuota() != 20000 || r.GetCpuPeriod() != 100000 || r.GetCpuShares() != 256 || r.GetCpusetCpus() != cpus {
			t.Errorf("ContainerStatus resources %s: %v", when, r)
		}
	}
	wantStatus("after the updates")

	// The record outlives berthd, and so do the cgroup's values.
	p.stop()
	p.start()
	wantStatus("after a berthd restart")
	files(appCg, after)

	// Refusals, each leaving the container as it was.
	wantCode(t, "negative memory", update(app, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}), codes.InvalidArgument, "linux.memory_limit_in_bytes")
	wantCode(t, "period out of range", update(app, &runtimeapi.LinuxContainerResources{CpuPeriod: 10}), codes.InvalidArgument, "linux.cpu_period")
	wantCode(t, "bad cpuset", update(app, &runtimeapi.LinuxContainerResources{CpusetCpus: "0-"}), codes.InvalidArgument, "linux.cpuset_cpus")
	wantCode(t, "unified key escaping", update(app, &runtimeapi.LinuxContainerResources{Unified: map[string]string{"../x": "1"}}), codes.InvalidArgument, "linux.unified")
	wantCode(t, "cpus the host lacks", update(app, &runtimeapi.LinuxContainerResources{CpusetCpus: "63"}), codes.InvalidArgument, "kernel refused")
	wantCode(t, "unknown container", update("0123456789abcdef", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 26}), codes.NotFound)
	wantCode(t, "no container id", update("", nil), codes.InvalidArgument, "container_id")
	files(appCg, after)

	// A limit below what a container holds (20 MB in a shell variable, no
	// swap to push it to) is refused by the kernel; the old one stays.
	hogCfg := ctrConfig("hog", "busybox", "sh", "-c", `x=$(head -c 20000000 /dev/zero | tr "\0" a); echo full; while :; do sleep 1000; done`)
	hogCfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	hog := p.runCtr(pod, podCfg, hogCfg)
	waitLogContains(t, logPath(podCfg, hogCfg), "full", 20*time.Second)
	wantCode(t, "limit below usage", update(hog, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 4 << 20}), codes.FailedPrecondition, "below")
	files(podCg+"/"+hog, map[string]string{"memory/memory.limit_in_bytes": "67108864"})
	if r := p.ctrStatus(hog).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 64<<20 {
		t.Errorf("hog's reported resources after a refused update: %v", r)
	}

	// The pod: resources (the containers' sum) plus overhead go to the
	// cgroup berthd made for it.
	updatePod := func(id string, overhead, r *runtimeapi.LinuxContainerResources) error {
		_, err := p.rt.UpdatePodSandboxResources(p.ctx(), &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: id, Overhead: overhead, Resources: r})
		return err
	}
	if err := updatePod(pod,
		&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 10000, MemoryLimitInBytes: 16 << 20},
		&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 120000, CpuShares: 1024, MemoryLimitInBytes: 256 << 20}); err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	podFiles := map[string]string{"memory/memory.limit_in_bytes": itoa(int64(272 << 20)), "cpu/cpu.cfs_quota_us": "130000", "cpu/cpu.shares": "1024"}
	files(podCg, podFiles)
	info, _ := p.podInfo(pod)["resources"].(map[string]any)
	if res, _ := info["resources"].(map[string]any); res["memory_limit_in_bytes"] != itoa(int64(256<<20)) || info["cgroupSet"] != true {
		t.Errorf("verbose PodSandboxStatus resources: %v", info)
	}
	if ov, _ := info["overhead"].(map[string]any); ov["memory_limit_in_bytes"] != itoa(int64(16<<20)) {
		t.Errorf("verbose PodSandboxStatus overhead: %v", info["overhead"])
	}
	// Below the pod's usage (the hog's 20 MB): refused, nothing changes.
	wantCode(t, "pod limit below usage", updatePod(pod, nil, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}), codes.FailedPrecondition, "below")
	files(podCg, podFiles)
	wantCode(t, "unknown pod", updatePod("0123456789abcdef", nil, nil), codes.NotFound)
	wantCode(t, "bad overhead", updatePod(pod, &runtimeapi.LinuxContainerResources{CpuShares: 1}, nil), codes.InvalidArgument, "overhead.cpu_shares")
	p.stop()
	p.start()
	if info, _ := p.podInfo(pod)["resources"].(map[string]any); info == nil {
		t.Error("the pod's resources were lost in a berthd restart")
	}

	// An exited container has nothing to resize.
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: app, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "exited container", update(app, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 26}), codes.FailedPrecondition, "exited")
	if r := p.ctrStatus(app).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 96<<20 {
		t.Errorf("exited container's resources: %v", r)
	}
}
