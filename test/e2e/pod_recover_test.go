package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testnet"
)

// TestKillBerthdPodsKeepRunning kills berthd with SIGKILL while a pod runs:
// its containers go on (one keeps logging), one that exits meanwhile has
// its exit recorded by the pod's monitor, and the restarted berthd reports
// all of it and still execs into and stops the containers.
func TestKillBerthdPodsKeepRunning(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("survivor")
	// A pod PID namespace, so that its holder process must survive too.
	podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	pod := p.runPod(podCfg)
	counterCfg := ctrConfig("counter", "busybox", "sh", "-c", `i=0; while true; do echo "n=$i"; i=$((i+1)); sleep 0.1; done`)
	counter := p.runCtr(pod, podCfg, counterCfg)
	waitLogContains(t, logPath(podCfg, counterCfg), "n=3\n", 10*time.Second)
	exiter := p.createCtr(pod, podCfg, ctrConfig("exiter", "busybox", "sh", "-c", "sleep 2; exit 7"))

	p.startCtr(exiter)
	started := time.Now()
	p.kill()
	killed := time.Now()
	linesAtKill := strings.Count(readLogText(t, logPath(podCfg, counterCfg)), "\n")
	time.Sleep(4 * time.Second)
	linesLater := strings.Count(readLogText(t, logPath(podCfg, counterCfg)), "\n")
	if linesLater < linesAtKill+10 {
		t.Errorf("the counter logged %d lines in the 4s berthd was down, want about 40", linesLater-linesAtKill)
	}
	restarted := time.Now()
	p.start()

	pods, err := p.rt.ListPodSandbox(p.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Id != pod || pods.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pods after the restart: %v", pods.Items)
	}
	ctrs, err := p.rt.ListContainers(p.ctx(), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]runtimeapi.ContainerState{}
	for _, c := range ctrs.Containers {
		states[c.Id] = c.State
	}
	if len(states) != 2 || states[counter] != runtimeapi.ContainerState_CONTAINER_RUNNING || states[exiter] != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("containers after the restart: %v (counter %s, exiter %s)", states, counter, exiter)
	}

	st := p.ctrStatus(exiter)
	finished := time.Unix(0, st.FinishedAt)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 7 || st.Reason != "Error" {
		t.Errorf("exiter: state %s exit code %d reason %q, want EXITED 7 Error", st.State, st.ExitCode, st.Reason)
	}
	// It exited about 2s after its start, while berthd was down.
	if finished.Before(started.Add(1500*time.Millisecond)) || finished.After(restarted) {
		t.Errorf("exiter finished at %s; started %s, berthd killed %s, restarted %s", finished.Format(time.StampMilli),
			started.Format(time.StampMilli), killed.Format(time.StampMilli), restarted.Format(time.StampMilli))
	}
	if st := p.ctrStatus(counter); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("counter after the restart: %s", st.State)
	}

	res, err := p.execSync(counter, 10, "echo", "still-here")
	if err != nil || string(res.Stdout) != "still-here\n" {
		t.Errorf("ExecSync after the restart: %v %q", err, res.GetStdout())
	}
	n := strings.Count(readLogText(t, logPath(podCfg, counterCfg)), "\n")
	waitLogContains(t, logPath(podCfg, counterCfg), fmt.Sprintf("n=%d\n", n+2), 10*time.Second)

	// A graceful restart (SIGTERM) leaves the containers running too.
	p.stop()
	p.start()
	if st := p.ctrStatus(counter); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("counter after a SIGTERM restart of berthd: %s", st.State)
	}
	n = strings.Count(readLogText(t, logPath(podCfg, counterCfg)), "\n")
	waitLogContains(t, logPath(podCfg, counterCfg), fmt.Sprintf("n=%d\n", n+2), 10*time.Second)

	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: counter, Timeout: 1}); err != nil {
		t.Fatalf("StopContainer after the restart: %v", err)
	}
	// The shell is not PID 1 of the pod's PID namespace: SIGTERM ends it.
	if st := p.ctrStatus(counter); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 143 {
		t.Errorf("counter after StopContainer: %s exit code %d, want EXITED 143 (SIGTERM)", st.State, st.ExitCode)
	}
	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox after the restarts: %v", err)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox after the restarts: %v", err)
	}
	checkPodGone(t, p, pod, []string{counter, exiter})
}

// TestKillMonitor kills a pod's berth-shim with SIGKILL. Its container
// runs on, unwatched: berthd must not claim it runs (its exit could never
// be learned), and the pod can still be stopped and removed, taking the
// orphaned processes with it.
func TestKillMonitor(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("orphan")
	pod := p.runPod(podCfg)
	id := p.runCtr(pod, podCfg, ctrConfig("sleeper", "busybox", "sleep", "3600"))

	pidf, ok := p.podInfo(pod)["monitorPid"].(float64)
	if !ok || pidf <= 0 {
		t.Fatalf("PodSandboxStatus verbose info has no monitorPid: %v", p.podInfo(pod))
	}
	shimPID := int(pidf)
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", shimPID))
	if !strings.Contains(string(cmdline), "berth-shim") || !strings.Contains(string(cmdline), pod) {
		t.Fatalf("monitorPid %d is not this pod's berth-shim: %q", shimPID, cmdline)
	}
	ctrPID := int(p.ctrInfo(id)["pid"].(float64))
	if !alive(ctrPID) {
		t.Fatalf("container pid %d does not run", ctrPID)
	}
	if err := syscall.Kill(shimPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(5*time.Second, func() bool { return !alive(shimPID) }) {
		t.Fatalf("berth-shim %d still runs after SIGKILL", shimPID)
	}

	st := p.ctrStatus(id)
	if st.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container reported RUNNING with its monitor dead")
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED && (st.ExitCode == 0 || !strings.Contains(st.Message, "monitor")) {
		t.Errorf("container EXITED with exit code %d message %q: want a non-zero code and a message about the monitor", st.ExitCode, st.Message)
	}
	t.Logf("after the monitor's death: %s, exit code %d, reason %q, message %q", st.State, st.ExitCode, st.Reason, st.Message)
	ctrs, err := p.rt.ListContainers(p.ctx(), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrs.Containers {
		if c.Id == id && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("ListContainers reports the container RUNNING with its monitor dead")
		}
	}
	// A pod without a monitor cannot run containers; kubelet recreates a
	// pod whose sandbox is not ready, and only then.
	if ps := p.podStatus(pod); ps.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("PodSandboxStatus with the pod's monitor dead: %s, want SANDBOX_NOTREADY", ps.State)
	}
	if _, err := p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: ctrConfig("late", "busybox", "true"), SandboxConfig: podCfg}); err == nil {
		t.Errorf("CreateContainer succeeded in a pod whose monitor is dead")
	}

	// A restarted berthd finds the monitor dead and says the same.
	p.stop()
	p.start()
	if st := p.ctrStatus(id); st.State == runtimeapi.ContainerState_CONTAINER_RUNNING || st.ExitCode == 0 {
		t.Errorf("after a berthd restart: container %s exit code %d", st.State, st.ExitCode)
	}

	// Whatever berthd reports, a successful StopContainer means the
	// container's processes are gone.
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Errorf("StopContainer: %v", err)
	} else if !waitUntil(3*time.Second, func() bool { return !alive(ctrPID) }) {
		t.Errorf("the orphaned container process %d still runs after StopContainer succeeded", ctrPID)
	}
	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	// CRI: StopPodSandbox forcibly terminates every container of the pod,
	// the unwatched ones included.
	if !waitUntil(3*time.Second, func() bool { return !alive(ctrPID) }) {
		t.Errorf("the orphaned container process %d still runs after StopPodSandbox", ctrPID)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	if !waitUntil(5*time.Second, func() bool { return !alive(ctrPID) }) {
		t.Errorf("the orphaned container process %d survived RemovePodSandbox", ctrPID)
	}
	checkPodGone(t, p, pod, []string{id})
}

// slowPlugin is a CNI plugin that marks when its ADD starts, then takes
// its time: berthd can be killed in the middle of RunPodSandbox, with the
// pod's namespaces made and the bridge's veth and lease in place.
const slowPlugin = `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) : > %s; sleep 3; echo '{"cniVersion": "1.0.0"}' ;;
VERSION) echo '{"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]}' ;;
esac
exit 0
`

// TestKillBerthdDuringRunPodSandbox kills berthd while a pod is being
// created: the next berthd tears down what exists of it and does not list
// it.
func TestKillBerthdDuringRunPodSandbox(t *testing.T) {
	pluginDir := t.TempDir()
	marker := filepath.Join(pluginDir, "adding")
	if err := os.WriteFile(filepath.Join(pluginDir, "berth-e2e-slow"), []byte(fmt.Sprintf(slowPlugin, marker)), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startPodDaemonWith(t, podDaemonOptions{
		network: fmt.Sprintf("plugin_dirs = [%q, %q]", pluginDir, testnet.PluginDir),
		conflist: func(env *testnet.Env) {
			env.WriteConf("10-slow.conflist", `{"type": "berth-e2e-slow"}`, testnet.PortmapConf, testnet.LoopbackConf)
		},
	})
	podCfg := p.podConfig("half-made")
	podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	errc := make(chan error, 1)
	ctx := p.ctx()
	go func() {
		_, err := p.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
		errc <- err
	}()
	if !waitUntil(20*time.Second, func() bool { _, err := os.Stat(marker); return err == nil }) {
		t.Fatal("the CNI ADD did not start")
	}
	podDirs := dirNames(t, filepath.Join(p.state, "pods"))
	if len(podDirs) != 1 {
		t.Fatalf("pods being created: %v", podDirs)
	}
	pod := podDirs[0]
	p.net.AddID(pod)
	if p.net.BridgePorts() == "" || len(p.net.Leases()) != 1 {
		t.Fatalf("in the middle of the CNI ADD: bridge ports %q, leases %v", p.net.BridgePorts(), p.net.Leases())
	}
	if len(mountsUnder(p.state)) == 0 {
		t.Fatal("no namespace mounts while the pod is being created")
	}
	p.kill()
	if err := <-errc; err == nil {
		t.Fatal("RunPodSandbox succeeded although berthd was killed during it")
	}

	p.start()
	pods, err := p.rt.ListPodSandbox(p.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("the half-made pod is listed: %v", pods.Items)
	}
	checkPodGone(t, p, pod, nil)
	if ports := p.net.BridgePorts(); ports != "" {
		t.Errorf("veth of the half-made pod left on the bridge: %s", ports)
	}
	if leases := p.net.Leases(); len(leases) != 0 {
		t.Errorf("lease of the half-made pod left: %v", leases)
	}
	if m := mountsUnder(p.root, p.state); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}

	// The same pod can be made afresh (here without the slow plugin).
	p.net.WriteConflist(true)
	os.Remove(filepath.Join(p.net.ConfDir, "10-slow.conflist"))
	p.runPod(podCfg)
}
