package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// clientScript connects to 127.0.0.1:8080 until the server answers (it may
// not listen yet), prints the answer, then what processes it sees.
const clientScript = `i=0
while [ $i -lt 100 ]; do
	if out=$(nc 127.0.0.1 8080 </dev/null) && [ -n "$out" ]; then
		echo "answer: $out"
		busybox ps -o comm
		exit 0
	fi
	i=$((i+1))
	sleep 0.1
done
echo "no answer from 127.0.0.1:8080"
exit 1`

// TestPodContainersShareLocalhost runs a server and a client in one pod:
// they share the pod's network namespace (the client reaches the server on
// 127.0.0.1) and, with a pod PID namespace, see each other's processes.
func TestPodContainersShareLocalhost(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("localhost")
	podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	pod := p.runPod(podCfg)

	server := p.runCtr(pod, podCfg, ctrConfig("server", "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "hi"))
	clientCfg := ctrConfig("client", "busybox", "sh", "-c", clientScript)
	client := p.runCtr(pod, podCfg, clientCfg)

	st := p.waitExited(client, 30*time.Second)
	text := readLogText(t, logPath(podCfg, clientCfg))
	if st.ExitCode != 0 || !strings.Contains(text, "answer: hi\n") {
		t.Fatalf("client exited %d, log:\n%s", st.ExitCode, text)
	}
	if !strings.Contains(text, "\nnc\n") {
		t.Errorf("the client does not see the server's nc in the pod's PID namespace:\n%s", text)
	}
	if st := p.ctrStatus(server); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("server after serving: %s", st.State)
	}
}

// TestContainerExitCodes checks the state, exit code, reason and times of
// containers that exit by themselves.
func TestContainerExitCodes(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("exits")
	// In a pod PID namespace the shell is not PID 1 (which no signal from
	// inside its namespace kills), so "kill -9 $$" ends it by the signal.
	podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	pod := p.runPod(podCfg)

	for _, c := range []struct {
		name   string
		cmd    []string
		code   int32
		reason string
		msg    string
	}{
		{"three", []string{"sh", "-c", "exit 3"}, 3, "Error", ""},
		{"true", []string{"true"}, 0, "Completed", ""},
		{"killed", []string{"sh", "-c", "kill -9 $$"}, 137, "Error", "SIGKILL"},
	} {
		before := time.Now()
		id := p.createCtr(pod, podCfg, ctrConfig(c.name, "busybox", c.cmd...))
		if st := p.ctrStatus(id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.StartedAt != 0 || st.FinishedAt != 0 {
			t.Errorf("%s after create: state %s, started %d, finished %d", c.name, st.State, st.StartedAt, st.FinishedAt)
		}
		p.startCtr(id)
		st := p.waitExited(id, 20*time.Second)
		if st.ExitCode != c.code || st.Reason != c.reason {
			t.Errorf("%s: exit code %d reason %q, want %d %q (message %q)", c.name, st.ExitCode, st.Reason, c.code, c.reason, st.Message)
		}
		if !strings.Contains(st.Message, c.msg) {
			t.Errorf("%s: message %q does not say %q", c.name, st.Message, c.msg)
		}
		created, started, finished := time.Unix(0, st.CreatedAt), time.Unix(0, st.StartedAt), time.Unix(0, st.FinishedAt)
		if created.Before(before.Add(-time.Second)) || started.Before(created) || !finished.After(started) || finished.After(time.Now()) {
			t.Errorf("%s: created %s, started %s, finished %s: want created <= started < finished <= now", c.name, created, started, finished)
		}
	}

	resp, err := p.rt.ListContainers(p.ctx(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Containers) != 3 {
		t.Errorf("ListContainers state EXITED: %d containers, want 3", len(resp.Containers))
	}
}

// TestContainerOOMKilled gives a container a 32 MiB memory limit and lets
// it allocate without end: the kernel kills it and the status says so.
func TestContainerOOMKilled(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("oom")
	pod := p.runPod(podCfg)

	cfg := ctrConfig("hog", "busybox", "busybox", "tail", "/dev/zero")
	const limit = 32 << 20
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: limit, MemorySwapLimitInBytes: limit}
	id := p.runCtr(pod, podCfg, cfg)
	st := p.waitExited(id, 60*time.Second)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("memory hog: reason %q exit code %d message %q, want OOMKilled and 137", st.Reason, st.ExitCode, st.Message)
	}
}

// TestReadOnlyRootfs: with readonly_rootfs no write to the image's tree
// succeeds, while the pod's tmpfs /dev/shm stays writable.
func TestReadOnlyRootfs(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("readonly")
	pod := p.runPod(podCfg)

	ro := ctrConfig("ro", "busybox", "sh", "-c", `busybox touch /x; echo "root=$?"; busybox touch /tmp/x; echo "tmp=$?"; echo data > /dev/shm/x; echo "shm=$?"; busybox touch /x`)
	ro.Linux.SecurityContext.ReadonlyRootfs = true
	rw := ctrConfig("rw", "busybox", "sh", "-c", `busybox touch /x && busybox touch /tmp/x && echo written`)

	roID := p.runCtr(pod, podCfg, ro)
	rwID := p.runCtr(pod, podCfg, rw)
	st := p.waitExited(roID, 20*time.Second)
	text := readLogText(t, logPath(podCfg, ro))
	if st.ExitCode == 0 {
		t.Errorf("touch /x on a read-only root exited 0; log:\n%s", text)
	}
	for _, want := range []string{"root=1\n", "tmp=1\n", "shm=0\n", "Read-only file system"} {
		if !strings.Contains(text, want) {
			t.Errorf("read-only root: log lacks %q:\n%s", want, text)
		}
	}
	if st := p.waitExited(rwID, 20*time.Second); st.ExitCode != 0 || !strings.Contains(readLogText(t, logPath(podCfg, rw)), "written") {
		t.Errorf("writable root: exit %d, log:\n%s", st.ExitCode, readLogText(t, logPath(podCfg, rw)))
	}
}

// TestRunAsUser checks whom a container runs as: the image's User (numeric
// or a name from its /etc/passwd), or the request's run_as_user or
// run_as_username over it; the status reports the same IDs the process has.
func TestRunAsUser(t *testing.T) {
	p := startPodDaemon(t, "")
	for _, img := range []string{"busybox", p.imageName("user"), p.imageName("username")} {
		p.mustPull(img)
	}
	podCfg := p.podConfig("users")
	pod := p.runPod(podCfg)

	for _, c := range []struct {
		name          string
		image         string
		uid           *int64
		username      string
		wantUID       int64
		wantGID       int64
		wantGroupsHas []int64
	}{
		{name: "image-uid", image: p.imageName("user"), wantUID: 1000, wantGID: 1000, wantGroupsHas: []int64{1000, 10, 1001}},
		{name: "override-uid", image: p.imageName("user"), uid: ptr[int64](1234), wantUID: 1234, wantGID: 0},
		{name: "image-name", image: p.imageName("username"), wantUID: 1000, wantGID: 1000, wantGroupsHas: []int64{1000, 10, 1001}},
		{name: "request-name", image: "busybox", username: "berth", wantUID: 1000, wantGID: 1000, wantGroupsHas: []int64{1000, 10, 1001}},
		{name: "request-nobody", image: "busybox", username: "nobody", wantUID: 65534, wantGID: 65534},
		{name: "root", image: "busybox", wantUID: 0, wantGID: 0},
	} {
		cfg := ctrConfig(c.name, c.image, "sh", "-c", "echo uid=$(id -u) gid=$(id -g) groups=$(id -G)")
		if c.uid != nil {
			cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *c.uid}
		}
		cfg.Linux.SecurityContext.RunAsUsername = c.username
		id := p.runCtr(pod, podCfg, cfg)
		st := p.waitExited(id, 20*time.Second)
		text := readLogText(t, logPath(podCfg, cfg))
		u := st.GetUser().GetLinux()
		if u.GetUid() != c.wantUID || u.GetGid() != c.wantGID {
			t.Errorf("%s: status user %v, want uid %d gid %d", c.name, u, c.wantUID, c.wantGID)
		}
		want := "uid=" + itoa(c.wantUID) + " gid=" + itoa(c.wantGID) + " groups="
		if !strings.Contains(text, want) {
			t.Errorf("%s: the process says %q, want %q...", c.name, strings.TrimSpace(text), want)
			continue
		}
		_, procGroups, _ := strings.Cut(strings.TrimSpace(text), "groups=")
		var statusGroups []string
		for _, g := range u.GetSupplementalGroups() {
			statusGroups = append(statusGroups, itoa(g))
		}
		if !sameSet(strings.Fields(procGroups), statusGroups) {
			t.Errorf("%s: the process has groups %q, the status says %v", c.name, procGroups, u.GetSupplementalGroups())
		}
		for _, g := range c.wantGroupsHas {
			if !strings.Contains(" "+procGroups+" ", " "+itoa(g)+" ") {
				t.Errorf("%s: groups %q lack %d", c.name, procGroups, g)
			}
		}
	}

	// A user the image does not have is the request's fault.
	cfg := ctrConfig("no-such-user", "busybox", "true")
	cfg.Linux.SecurityContext.RunAsUsername = "nosuchuser"
	_, err := p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	wantCode(t, "run_as_username nosuchuser", err, codes.InvalidArgument, "run_as_username", "nosuchuser")
}

func ptr[T any](v T) *T { return &v }

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestStopContainerGraceful: StopContainer sends SIGTERM and returns as
// soon as the container exits; one that ignores SIGTERM is killed once
// the timeout passes.
func TestStopContainerGraceful(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("stop")
	pod := p.runPod(podCfg)
	polite := ctrConfig("polite", "busybox", "sh", "-c", `trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done`)
	politeID := p.runCtr(pod, podCfg, polite)
	// PID 1 of a PID namespace has no default action for SIGTERM: sleep
	// ignores it.
	stubbornID := p.runCtr(pod, podCfg, ctrConfig("stubborn", "busybox", "sleep", "3600"))
	waitLogContains(t, logPath(podCfg, polite), "ready\n", 10*time.Second)

	start := time.Now()
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: politeID, Timeout: 30}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("StopContainer of a container that exits on SIGTERM took %s", took)
	}
	st := p.ctrStatus(politeID)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("after SIGTERM: %s exit code %d reason %q, want EXITED 0 Completed", st.State, st.ExitCode, st.Reason)
	}
	if text := readLogText(t, logPath(podCfg, polite)); !strings.Contains(text, "got-term\n") {
		t.Errorf("the container did not log its SIGTERM:\n%s", text)
	}

	start = time.Now()
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: stubbornID, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond || took > 10*time.Second {
		t.Errorf("StopContainer with timeout 2 of a container that ignores SIGTERM took %s", took)
	}
	if st := p.ctrStatus(stubbornID); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("after the timeout: %s exit code %d, want EXITED 137", st.State, st.ExitCode)
	}
}

// TestPodCgroupParent: containers of a pod whose request names a
// cgroup_parent (kubelet always does) live in <parent>/<container id>,
// with their resource limits there; removal takes the containers' cgroups
// and leaves the parent, which belongs to kubelet.
func TestPodCgroupParent(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	parent := p.cgroup + "/kubepods/pod-e2e"
	podCfg := p.podConfig("cgroup-parent")
	podCfg.Linux.CgroupParent = parent
	pod := p.runPod(podCfg)
	cfg := ctrConfig("limited", "busybox", "sleep", "3600")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20, CpuShares: 256}
	id := p.runCtr(pod, podCfg, cfg)

	pid := int(p.ctrInfo(id)["pid"].(float64))
	cgfile, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	want := parent + "/" + id
	for _, line := range strings.Split(strings.TrimSpace(string(cgfile)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && f[1] != "" && f[2] != want {
			t.Errorf("container process in %s, want %s (hierarchy %s)", f[2], want, f[1])
		}
	}
	if got := readTrim(filepath.Join(p.cgroupMount("memory"), want, "memory.limit_in_bytes")); got != itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes %q, want %d", got, 64<<20)
	}
	if got := readTrim(filepath.Join(p.cgroupMount("cpu"), want, "cpu.shares")); got != "256" {
		t.Errorf("cpu.shares %q, want 256", got)
	}

	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if dirs := cgroupDirs(want); len(dirs) != 0 {
		t.Errorf("container cgroups left: %v", dirs)
	}
	if dirs := cgroupDirs(parent); len(dirs) == 0 {
		t.Errorf("the pod's cgroup_parent %s was removed; it is kubelet's", parent)
	}
	if dirs := cgroupDirs(p.cgroup + "/pods/" + pod); len(dirs) != 0 {
		t.Errorf("a pod with a cgroup_parent got a cgroup under pod_cgroup: %v", dirs)
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
