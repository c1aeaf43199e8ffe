package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// Runtime handlers: pods whose RunPodSandbox names a configured handler
// have their containers run by that OCI runtime binary, driven by the
// pod's monitor, with everything else as for the built-in handler.

func TestRuntimeHandlerRunc(t *testing.T) { testExternalRuntime(t, "runc", "/usr/sbin/runc") }

// runPodWith runs a pod with a runtime handler.
func (p *podDaemon) runPodWith(cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	resp, err := p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		return "", err
	}
	p.net.AddID(resp.PodSandboxId)
	return resp.PodSandboxId, nil
}

func testExternalRuntime(t *testing.T, handler, bin string) {
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no %s (apt-get install %s)", bin, handler)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("reads cgroup v1 files")
	}
	p := startPodDaemon(t, fmt.Sprintf("[runtime.handlers.%s]\npath = %q", handler, bin))
	p.mustPull("busybox")

	// Status lists the handler, claiming no feature it lacks.
	st, err := p.rt.Status(p.ctx(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var found *runtimeapi.RuntimeHandler
	for _, h := range st.RuntimeHandlers {
		if h.Name == handler {
			found = h
		}
	}
	if found == nil || found.Features.GetUserNamespaces() || found.Features.GetRecursiveReadOnlyMounts() {
		t.Errorf("Status runtime handlers: %v, want %q without features", st.RuntimeHandlers, handler)
	}

	// Refusals: an unknown handler; a pod user namespace, which this
	// handler does not build.
	_, err = p.runPodWith(p.podConfig("unknown"), "no-such-runtime")
	wantCode(t, "unknown handler", err, codes.InvalidArgument, "runtime_handler", "no-such-runtime")
	usernsCfg := p.podConfig("userns")
	usernsCfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{
		Mode: runtimeapi.NamespaceMode_POD,
		Uids: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}},
		Gids: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}},
	}
	_, err = p.runPodWith(usernsCfg, handler)
	wantCode(t, "user namespace with "+handler, err, codes.InvalidArgument, "userns_options")

	podCfg := p.podConfig("ext-" + handler)
	// A pod PID namespace: its containers join it by path.
	podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	pod, err := p.runPodWith(podCfg, handler)
	if err != nil {
		t.Fatalf("RunPodSandbox with handler %s: %v", handler, err)
	}
	if h := p.podStatus(pod).GetRuntimeHandler(); h != handler {
		t.Errorf("PodSandboxStatus runtime_handler %q, want %q", h, handler)
	}
	shimDir := filepath.Join(p.state, "shims", pod)
	shimPID := int(p.podInfo(pod)["monitorPid"].(float64))

	counterCfg := ctrConfig("counter", "busybox", "sh", "-c", `echo to-stderr >&2; i=0; while true; do echo "n=$i"; i=$((i+1)); sleep 0.1; done`)
	counterCfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	counter := p.runCtr(pod, podCfg, counterCfg)
	waitLogContains(t, logPath(podCfg, counterCfg), "n=3\n", 10*time.Second)
	recs := parseCRILog(t, logPath(podCfg, counterCfg))
	if !strings.Contains(logText(recs, "stderr"), "to-stderr\n") || !strings.HasPrefix(logText(recs, "stdout"), "n=0\nn=1\n") {
		t.Errorf("CRI log: stdout %q stderr %q", logText(recs, "stdout"), logText(recs, "stderr"))
	}

	// A container on a terminal: the binary hands the pty over.
	ttyCfg := ctrConfig("tty", "busybox", "sh", "-c", `[ -t 1 ] && echo on-a-tty; exit 5`)
	ttyCfg.Tty = true
	tty := p.runCtr(pod, podCfg, ttyCfg)
	if st := p.waitExited(tty, 20*time.Second); st.ExitCode != 5 {
		t.Errorf("tty container: exit code %d, want 5", st.ExitCode)
	}
	waitLogContains(t, logPath(podCfg, ttyCfg), "on-a-tty\n", 5*time.Second)

	// The binary made the container: its state is in the binary's root, not
	// in libcontainer's; the init, left by the binary, is the monitor's.
	pid := int(p.ctrInfo(counter)["pid"].(float64))
	if _, err := os.Stat(filepath.Join(shimDir, api.RuntimeRootDir, counter)); err != nil {
		t.Errorf("%s state of the container: %v", handler, err)
	}
	if _, err := os.Stat(filepath.Join(shimDir, api.LibcontainerDir, counter)); err == nil {
		t.Errorf("libcontainer has state of a %s container", handler)
	}
	if ppid := parentOf(pid); ppid != shimPID {
		t.Errorf("container init %d has parent %d, want the monitor %d", pid, ppid, shimPID)
	}

	// ExecSync, with an exit code; a streaming exec with pipes and a tty.
	res, err := p.execSync(counter, 10, "sh", "-c", "echo exec-out; echo exec-err >&2; exit 3")
	if err != nil || res.ExitCode != 3 || string(res.Stdout) != "exec-out\n" || string(res.Stderr) != "exec-err\n" {
		t.Errorf("ExecSync: %v %+v", err, res)
	}
	// Past its timeout the command is killed (found through the cgroup).
	begun := time.Now()
	_, err = p.execSync(counter, 1, "sh", "-c", "sleep 30; echo never")
	wantCode(t, "ExecSync past its timeout", err, codes.DeadlineExceeded)
	if d := time.Since(begun); d > 10*time.Second {
		t.Errorf("ExecSync with a 1s timeout took %s", d)
	}
	cmd := p.crictlCmd("exec", counter, "sh", "-c", "echo stream-out; exit 4")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err == nil || out.String() != "stream-out\n" || !strings.Contains(errb.String(), "exit code 4") {
		t.Errorf("crictl exec: %v, stdout %q stderr %q", err, out.String(), errb.String())
	}
	p.ttyExec(t, "spdy", counter)

	// UpdateContainerResources goes through the binary to the cgroup.
	ctrCg := p.cgroup + "/pods/" + pod + "/" + counter
	if got := readCgroupV1(t, "memory", ctrCg, "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("memory limit at create: %s", got)
	}
	if _, err := p.rt.UpdateContainerResources(p.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: counter,
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuPeriod: 100000, CpuQuota: 30000}}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	if got := readCgroupV1(t, "memory", ctrCg, "memory.limit_in_bytes"); got != "100663296" {
		t.Errorf("memory limit after the update: %s", got)
	}
	if got := readCgroupV1(t, "cpu", ctrCg, "cpu.cfs_quota_us"); got != "30000" {
		t.Errorf("cpu quota after the update: %s", got)
	}
	if r := p.ctrStatus(counter).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 96<<20 {
		t.Errorf("ContainerStatus resources: %v", r)
	}
	// Stats read the cgroup by its path.
	if !waitUntil(15*time.Second, func() bool {
		s, err := p.rt.ContainerStats(p.ctx(), &runtimeapi.ContainerStatsRequest{ContainerId: counter})
		return err == nil && s.GetStats().GetMemory().GetWorkingSetBytes().GetValue() > 0
	}) {
		t.Error("ContainerStats: no memory figure")
	}

	// The OOM killer's verdict is read from the container's cgroup.
	hogCfg := ctrConfig("hog", "busybox", "busybox", "tail", "/dev/zero")
	hogCfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20, MemorySwapLimitInBytes: 32 << 20}
	hog := p.runCtr(pod, podCfg, hogCfg)
	if st := p.waitExited(hog, 60*time.Second); st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("memory hog: reason %q exit code %d, want OOMKilled 137", st.Reason, st.ExitCode)
	}

	// berthd killed: the containers run on, one exits meanwhile with its
	// code recorded, and the next berthd reports both.
	exiter := p.runCtr(pod, podCfg, ctrConfig("exiter", "busybox", "sh", "-c", "sleep 2; exit 7"))
	p.kill()
	time.Sleep(3 * time.Second)
	p.start()
	if st := p.ctrStatus(exiter); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 7 {
		t.Errorf("exiter after the restart: %s exit code %d, want EXITED 7", st.State, st.ExitCode)
	}
	if st := p.ctrStatus(counter); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("counter after the restart: %s", st.State)
	}
	n := strings.Count(readLogText(t, logPath(podCfg, counterCfg)), "\n")
	waitLogContains(t, logPath(podCfg, counterCfg), fmt.Sprintf("n=%d\n", n), 10*time.Second)

	// StopContainer: SIGTERM ends the shell (not PID 1 of the pod's PID
	// namespace); one that ignores it is killed after the timeout.
	stubborn := p.runCtr(pod, podCfg, ctrConfig("stubborn", "busybox", "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`))
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: counter, Timeout: 5}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if st := p.ctrStatus(counter); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 143 {
		t.Errorf("counter after StopContainer: %s exit code %d, want EXITED 143", st.State, st.ExitCode)
	}
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: stubborn, Timeout: 1}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if st := p.ctrStatus(stubborn); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("stubborn after StopContainer: %s exit code %d, want EXITED 137", st.State, st.ExitCode)
	}

	// A container created but never started goes with its pod.
	created := p.createCtr(pod, podCfg, ctrConfig("created", "busybox", "true"))

	// Removal leaves nothing: mounts, cgroups, files (the binary's state is
	// inside the monitor's directory), processes.
	ctrs := []string{counter, hog, exiter, stubborn, tty, created}
	if _, err := p.rt.RemoveContainer(p.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: exiter}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(shimDir, api.RuntimeRootDir, exiter)); err == nil {
		t.Errorf("%s state of a removed container is left", handler)
	}
	if t.Failed() || os.Getenv("BERTH_E2E_SHIM_LOG") != "" {
		b, _ := os.ReadFile(filepath.Join(shimDir, "shim.log"))
		t.Logf("monitor log:\n%s", b)
	}
	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	checkPodGone(t, p, pod, ctrs)
}

// parentOf is the parent PID of pid, 0 if unknown.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	var state string
	var ppid int
	fmt.Sscanf(string(b[i+2:]), "%s %d", &state, &ppid)
	return ppid
}
