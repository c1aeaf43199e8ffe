package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testnet"
)

// podTraces lists what of a pod and its containers exists on the node:
// mounts, cgroups, files, processes and NAT rules naming them.
func podTraces(p *podDaemon, pod string, ctrs []string) []string {
	var out []string
	ids := append([]string{pod}, ctrs...)
	for _, m := range mountsUnder(p.root, p.state) {
		for _, id := range ids {
			if strings.Contains(m, id) {
				out = append(out, "mount "+m)
				break
			}
		}
	}
	cgs := []string{p.cgroup + "/shims/" + pod, p.cgroup + "/pods/" + pod}
	for _, c := range ctrs {
		cgs = append(cgs, p.cgroup+"/pods/"+pod+"/"+c)
	}
	for _, cg := range cgs {
		for _, d := range cgroupDirs(cg) {
			out = append(out, "cgroup "+d)
		}
	}
	files := []string{
		filepath.Join(p.state, "pods", pod),
		filepath.Join(p.state, "shims", pod),
	}
	for _, c := range ctrs {
		files = append(files, filepath.Join(p.state, "containers", c), filepath.Join(p.root, "containers", c))
	}
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			out = append(out, "file "+f)
		}
	}
	for _, pid := range procsWithArgs(pod) {
		if alive(pid) {
			cmdline, _ := os.ReadFile("/proc/" + itoa(pid) + "/cmdline")
			out = append(out, "process "+itoa(pid)+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	rules, _ := testnet.Run("iptables", "-t", "nat", "-S")
	for _, l := range strings.Split(rules, "\n") {
		if strings.Contains(l, pod) {
			out = append(out, "nat rule "+l)
		}
	}
	return out
}

// checkPodGone fails the test if anything of a removed pod is left. Its
// processes get a moment to be reaped.
func checkPodGone(t *testing.T, p *podDaemon, pod string, ctrs []string) {
	t.Helper()
	var left, first []string
	start := time.Now()
	waitUntil(5*time.Second, func() bool {
		left = podTraces(p, pod, ctrs)
		if first == nil {
			first = left
		}
		return len(left) == 0
	})
	if len(first) > 0 && len(left) == 0 {
		t.Logf("traces of pod %s took %s to go after RemovePodSandbox returned: %v", pod, time.Since(start).Round(time.Millisecond), first)
	}
	for _, l := range left {
		t.Errorf("left after RemovePodSandbox of %s: %s", pod, l)
	}
	_, err := p.rt.PodSandboxStatus(p.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	wantCode(t, "PodSandboxStatus of a removed pod", err, codes.NotFound)
	for _, c := range ctrs {
		_, err := p.rt.ContainerStatus(p.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: c})
		wantCode(t, "ContainerStatus of a removed container", err, codes.NotFound)
	}
}

// TestNothingLeftAfterRemove removes a pod with a running and an exited
// container, a pod PID namespace and a host port, and checks the node is
// as before: no mount, cgroup, namespace file, veth, lease, NAT rule,
// state file or process of it.
func TestNothingLeftAfterRemove(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	mountsBefore := mountsUnder(p.root, p.state)

	podCfg := p.podConfig("leftovers")
	podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podCfg.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: freePort(t)}}
	pod := p.runPod(podCfg)
	running := p.runCtr(pod, podCfg, ctrConfig("running", "busybox", "sleep", "3600"))
	exited := p.runCtr(pod, podCfg, ctrConfig("exited", "busybox", "true"))
	created := p.createCtr(pod, podCfg, ctrConfig("created", "busybox", "true"))
	p.waitExited(exited, 20*time.Second)
	ctrs := []string{running, exited, created}

	// Everything checked below exists while the pod does, so its absence
	// later means something.
	info := p.podInfo(pod)
	netns, _ := info["netns"].(string)
	shimPID := int(info["monitorPid"].(float64))
	ctrPID := int(p.ctrInfo(running)["pid"].(float64))
	traces := podTraces(p, pod, ctrs)
	for _, want := range []string{"mount " + netns, "cgroup ", "file " + filepath.Join(p.state, "shims", pod), "process ", "nat rule "} {
		if !slices.ContainsFunc(traces, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("while the pod runs, no %q among its traces:\n%s", want, strings.Join(traces, "\n"))
		}
	}
	if len(procsWithArgs("pidns-holder", pod)) != 1 {
		t.Errorf("no PID namespace holder for the pod")
	}
	if p.net.BridgePorts() == "" || len(p.net.Leases()) != 1 {
		t.Errorf("while the pod runs: bridge ports %q, leases %v", p.net.BridgePorts(), p.net.Leases())
	}

	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	ps := p.podStatus(pod)
	if ps.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod after StopPodSandbox: %s", ps.State)
	}
	for _, c := range ctrs {
		if st := p.ctrStatus(c); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("container %s after StopPodSandbox: %s", st.Metadata.Name, st.State)
		}
	}
	if alive(ctrPID) {
		t.Errorf("container process %d runs after StopPodSandbox", ctrPID)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}

	checkPodGone(t, p, pod, ctrs)
	if alive(shimPID) {
		t.Errorf("berth-shim %d runs after RemovePodSandbox", shimPID)
	}
	if got := mountsUnder(p.root, p.state); !slices.Equal(got, mountsBefore) {
		t.Errorf("mounts under the root and state dir: before %v, after %v", mountsBefore, got)
	}
	if netns != "" {
		if _, err := os.Lstat(netns); !os.IsNotExist(err) {
			t.Errorf("netns file %s: %v", netns, err)
		}
	}
	if ports := p.net.BridgePorts(); ports != "" {
		t.Errorf("veths left on the bridge:\n%s", ports)
	}
	if leases := p.net.Leases(); len(leases) != 0 {
		t.Errorf("IP leases left: %v", leases)
	}
	for _, dir := range []string{filepath.Join(p.root, "containers"), filepath.Join(p.state, "pods"), filepath.Join(p.state, "shims"), filepath.Join(p.state, "containers")} {
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("%s still holds %v", dir, names)
		}
	}
	for _, cg := range []string{p.cgroup + "/shims", p.cgroup + "/pods"} {
		for _, d := range cgroupDirs(cg) {
			if sub := subdirs(d); len(sub) != 0 {
				t.Errorf("cgroup %s still has %v", d, sub)
			}
		}
	}
	pods, _ := p.rt.ListPodSandbox(p.ctx(), &runtimeapi.ListPodSandboxRequest{})
	list, _ := p.rt.ListContainers(p.ctx(), &runtimeapi.ListContainersRequest{})
	if len(pods.GetItems()) != 0 || len(list.GetContainers()) != 0 {
		t.Errorf("after removal: %d pods, %d containers listed", len(pods.GetItems()), len(list.GetContainers()))
	}
}

func subdirs(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
