package e2e

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodAndContainerErrors checks the answers kubelet relies on: stop and
// remove of what is gone succeed, status of what is gone is NotFound, and
// a bad request is refused with the right code, naming what is wrong,
// without leaving anything half-made.
func TestPodAndContainerErrors(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	const unknown = "00000000000000000000000000000000000000000000000000000000000000ff"

	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("StopPodSandbox of an unknown pod: %v", err)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("RemovePodSandbox of an unknown pod: %v", err)
	}
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("StopContainer of an unknown container: %v", err)
	}
	if _, err := p.rt.RemoveContainer(p.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("RemoveContainer of an unknown container: %v", err)
	}
	_, err := p.rt.PodSandboxStatus(p.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: unknown})
	wantCode(t, "PodSandboxStatus of an unknown pod", err, codes.NotFound)
	_, err = p.rt.ContainerStatus(p.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: unknown})
	wantCode(t, "ContainerStatus of an unknown container", err, codes.NotFound)
	_, err = p.rt.StartContainer(p.ctx(), &runtimeapi.StartContainerRequest{ContainerId: unknown})
	wantCode(t, "StartContainer of an unknown container", err, codes.NotFound)

	noMeta := p.podConfig("no-metadata")
	noMeta.Metadata = nil
	_, err = p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: noMeta})
	wantCode(t, "RunPodSandbox without metadata", err, codes.InvalidArgument, "config.metadata")
	_, err = p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: p.podConfig("handler"), RuntimeHandler: "no-such-handler"})
	wantCode(t, "RunPodSandbox with an unknown runtime handler", err, codes.InvalidArgument, "no-such-handler")

	// A value that would smuggle a second setting is refused up front; a
	// well-formed name the kernel does not have fails once the pod's
	// namespaces exist, and they are undone.
	for _, c := range []struct{ name, key, value string }{
		{"sysctl-newline", "net.ipv4.ip_unprivileged_port_start", "80\nnet.ipv4.ip_forward=1"},
		{"sysctl-unknown", "net.ipv4.berth_no_such_setting", "1"},
	} {
		cfg := p.podConfig(c.name)
		cfg.Linux.Sysctls = map[string]string{c.key: c.value}
		_, err = p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		wantCode(t, "RunPodSandbox with sysctl "+c.name, err, codes.InvalidArgument, "linux.sysctls")
	}
	checkNothingHalfMade(t, p)

	podCfg := p.podConfig("errors")
	pod := p.runPod(podCfg)
	_, err = p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	wantCode(t, "RunPodSandbox of the same name, namespace, uid and attempt", err, codes.AlreadyExists)
	again := proto.Clone(podCfg).(*runtimeapi.PodSandboxConfig)
	again.Metadata.Attempt = 1
	pod2 := p.runPod(again)

	_, err = p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: ctrConfig("nope", "docker.io/berth/never-pulled:1"), SandboxConfig: podCfg})
	wantCode(t, "CreateContainer with an image not pulled", err, codes.NotFound, "docker.io/berth/never-pulled:1")
	_, err = p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: unknown, Config: ctrConfig("nope", "busybox", "true"), SandboxConfig: podCfg})
	wantCode(t, "CreateContainer in an unknown pod", err, codes.NotFound)
	noName := ctrConfig("", "busybox", "true")
	_, err = p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: noName, SandboxConfig: podCfg})
	wantCode(t, "CreateContainer without a name", err, codes.InvalidArgument, "config.metadata.name")
	escape := ctrConfig("escape", "busybox", "true")
	escape.LogPath = "../../escape.log"
	_, err = p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: escape, SandboxConfig: podCfg})
	wantCode(t, "CreateContainer with a log path out of the log directory", err, codes.InvalidArgument, "log_path")

	id := p.runCtr(pod, podCfg, ctrConfig("once", "busybox", "sleep", "3600"))
	_, err = p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: ctrConfig("once", "busybox", "true"), SandboxConfig: podCfg})
	wantCode(t, "CreateContainer of a name the pod already has", err, codes.AlreadyExists)
	_, err = p.rt.StartContainer(p.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id})
	wantCode(t, "StartContainer of a running container", err, codes.FailedPrecondition)

	// Stop and remove twice: the second time is a success too.
	for i := 0; i < 2; i++ {
		if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("StopContainer #%d: %v", i+1, err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := p.rt.RemoveContainer(p.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("RemoveContainer #%d: %v", i+1, err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Errorf("StopPodSandbox #%d: %v", i+1, err)
		}
	}
	_, err = p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: ctrConfig("late", "busybox", "true"), SandboxConfig: podCfg})
	wantCode(t, "CreateContainer in a stopped pod", err, codes.FailedPrecondition)
	for i := 0; i < 2; i++ {
		if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Errorf("RemovePodSandbox #%d: %v", i+1, err)
		}
	}
	// A ready pod is removed without being stopped first, its running
	// container with it.
	p.runCtr(pod2, again, ctrConfig("running", "busybox", "sleep", "3600"))
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod2}); err != nil {
		t.Errorf("RemovePodSandbox of a ready pod: %v", err)
	}
	checkNothingHalfMade(t, p)
}

// checkNothingHalfMade fails unless the daemon has no pod and nothing of
// one on the node: no state dir entry, mount or namespace file.
func checkNothingHalfMade(t *testing.T, p *podDaemon) {
	t.Helper()
	resp, err := p.rt.ListPodSandbox(p.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Items) != 0 {
		t.Errorf("pods listed: %v", resp.Items)
	}
	for _, dir := range []string{"pods", "shims", "containers"} {
		if names := dirNames(t, filepath.Join(p.state, dir)); len(names) != 0 {
			t.Errorf("%s/%s holds %v", p.state, dir, names)
		}
	}
	for _, m := range mountsUnder(p.root, p.state) {
		t.Errorf("mount left: %s", m)
	}
	if ports := p.net.BridgePorts(); ports != "" {
		t.Errorf("veths on the bridge: %s", ports)
	}
	if leases := p.net.Leases(); len(leases) != 0 {
		t.Errorf("IP leases left: %v", leases)
	}
	entries, _ := os.ReadDir(filepath.Join(p.cgroupMount("memory"), p.cgroup, "shims"))
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("monitor cgroup left: %s", e.Name())
		}
	}
	if procs := procsWithArgs("berth-shim", "--dir", p.state); len(procs) != 0 {
		t.Errorf("berth-shim processes left: %v", procs)
	}
}

// cgroupMount is where the v1 hierarchy of controller is mounted.
func (p *podDaemon) cgroupMount(controller string) string {
	for _, m := range cgroupMounts() {
		for _, part := range strings.Split(filepath.Base(m), ",") {
			if part == controller {
				return m
			}
		}
	}
	return "/sys/fs/cgroup/" + controller
}

// TestLongStateDir: a pod's monitor listens on
// <state_dir>/shims/<64-hex pod id>/shim.sock, and a unix socket address
// holds at most 107 bytes, so a state_dir over about 33 bytes cannot serve
// pods. berthd must either refuse such a state_dir at start, naming it, as
// it does other bad values, or run pods anyway.
func TestLongStateDir(t *testing.T) {
	p := startPodDaemon(t, "")
	p.stop()
	p.state = filepath.Join(p.dir, "a-state-dir-longer-than-a-socket-allows")
	p.socket = filepath.Join(p.state, "berth.sock")
	res := runBerthdUntilServing(t, p)
	if res != nil {
		if res.code == 0 || !strings.Contains(res.stderr, "state_dir") {
			t.Errorf("berthd with state dir %s: exit %d, stderr %q; want a refusal naming state_dir", p.state, res.code, res.stderr)
		}
		return
	}
	cfg := p.podConfig("long-state-dir")
	resp, err := p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("berthd started with state dir %s (%d bytes) but cannot run a pod: %v", p.state, len(p.state), err)
	}
	p.net.AddID(resp.PodSandboxId)
}

// runBerthdUntilServing starts berthd and returns nil once it serves (it
// then runs as p's daemon), or how it ended if it exits first.
func runBerthdUntilServing(t *testing.T, p *podDaemon) *berthdResult {
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(berthdPath(t), p.args()...)
	cmd.Stdout, cmd.Stderr = io.MultiWriter(logf, &stdout), io.MultiWriter(logf, &stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	// The log stays open while berthd runs: it writes through a pipe
	// copied here, and a closed copy would end it with SIGPIPE.
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return &berthdResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
		default:
		}
		if _, err := os.Stat(p.socket); err == nil && p.connect() == nil {
			p.cmd, p.exited = cmd, exited
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			t.Fatal("berthd neither served nor exited within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
