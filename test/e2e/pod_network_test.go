package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testnet"
)

// askTCP connects to addr and returns everything the server sends before
// it closes the connection.
func askTCP(addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	return string(b), err
}

// waitAnswer asks addr until it answers want.
func waitAnswer(t *testing.T, addr, want string, timeout time.Duration) {
	t.Helper()
	var got string
	var err error
	if !waitUntil(timeout, func() bool {
		got, err = askTCP(addr, time.Second)
		return err == nil && strings.TrimSpace(got) == want
	}) {
		t.Fatalf("%s answered %q (%v), want %q", addr, got, err, want)
	}
}

// freePort returns a TCP port nothing on the node listens on now.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// TestHostPort maps a host port to a container's port. On the node's
// address on the test bridge portmap forwards it (DNAT in the nat OUTPUT
// chain); on 127.0.0.1 berthd carries it, so no masquerade is needed. The
// loopback port comes back after a berthd restart and goes with the pod.
func TestHostPort(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	hostPort := freePort(t)
	podCfg := p.podConfig("hostport")
	podCfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort}}
	pod := p.runPod(podCfg)
	p.runCtr(pod, podCfg, ctrConfig("server", "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "through-the-port"))

	podIP := net.ParseIP(p.podStatus(pod).GetNetwork().GetIp())
	if podIP == nil || !p.net.Subnet.Contains(podIP) {
		t.Fatalf("pod IP %q is not in the test subnet %s", p.podStatus(pod).GetNetwork().GetIp(), p.net.Subnet)
	}
	waitAnswer(t, net.JoinHostPort(podIP.String(), "8080"), "through-the-port", 10*time.Second)

	rules := testnet.NATRules(t)
	if !strings.Contains(rules, pod) || !strings.Contains(rules, fmt.Sprintf("--to-destination %s:8080", podIP)) {
		t.Fatalf("no DNAT rule for pod %s to %s:8080:\n%s", pod, podIP, rules)
	}
	hostAddr := net.JoinHostPort(p.net.Gateway().String(), strconv.Itoa(int(hostPort)))
	waitAnswer(t, hostAddr, "through-the-port", 10*time.Second)

	loopback := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(hostPort)))
	waitAnswer(t, loopback, "through-the-port", 10*time.Second)

	// After a crash of berthd the loopback port opens again.
	// While berthd is down, portmap still forwards the node's address, and
	// 127.0.0.1, which is berthd's, does not answer.
	p.kill()
	waitAnswer(t, hostAddr, "through-the-port", 10*time.Second)
	if got, err := askTCP(loopback, time.Second); err == nil {
		t.Errorf("127.0.0.1:%d answered %q with berthd down: the kernel forwards loopback", hostPort, got)
	}
	p.start()
	waitAnswer(t, loopback, "through-the-port", 10*time.Second)

	// A second pod asking for the same host port while the first holds
	// it on 127.0.0.1 is refused, and leaves nothing behind.
	clash := p.podConfig("hostport-clash")
	clash.PortMappings = podCfg.PortMappings
	_, err := p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: clash})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), fmt.Sprintf("tcp/%d", hostPort)) {
		t.Errorf("RunPodSandbox with a host port in use: %v, want FailedPrecondition naming tcp/%d", err, hostPort)
	}
	if pods, _ := p.rt.ListPodSandbox(p.ctx(), &runtimeapi.ListPodSandboxRequest{}); len(pods.GetItems()) != 1 {
		t.Errorf("%d pods listed after the refused one, want 1", len(pods.GetItems()))
	}

	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if rules := testnet.NATRules(t); strings.Contains(rules, pod) || strings.Contains(rules, fmt.Sprintf("--dports %d ", hostPort)) {
		t.Errorf("portmap rules left after StopPodSandbox:\n%s", rules)
	}
	for _, addr := range []string{hostAddr, loopback} {
		if got, err := askTCP(addr, time.Second); err == nil {
			t.Errorf("host port %s still answers %q after StopPodSandbox", addr, got)
		}
	}
	if l, err := net.Listen("tcp", loopback); err != nil {
		t.Errorf("127.0.0.1:%d still bound after StopPodSandbox: %v", hostPort, err)
	} else {
		l.Close()
	}
}

// TestHostNetworkPod runs a pod in the node's network namespace: its
// container sees the node's interfaces and hostname, the pod has no
// network namespace of its own, no IP and no veth on the bridge.
func TestHostNetworkPod(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	script := "cat /proc/net/dev; echo hostname=$(busybox hostname)"

	// A pod on the test network first, which also brings the bridge up.
	podCfg := p.podConfig("on-bridge")
	pod := p.runPod(podCfg)
	podCtr := ctrConfig("ifaces", "busybox", "sh", "-c", script)
	p.waitExited(p.runCtr(pod, podCfg, podCtr), 20*time.Second)
	podText := readLogText(t, logPath(podCfg, podCtr))
	if strings.Contains(podText, p.net.Bridge+":") || !strings.Contains(podText, "eth0:") || !strings.Contains(podText, "hostname=on-bridge\n") {
		t.Errorf("a pod with its own network sees:\n%s", podText)
	}
	ports := p.net.BridgePorts()

	hostCfg := p.podConfig("host-net")
	hostCfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	hostPod := p.runPod(hostCfg)
	hostCtr := ctrConfig("ifaces", "busybox", "sh", "-c", script)
	p.waitExited(p.runCtr(hostPod, hostCfg, hostCtr), 20*time.Second)
	hostText := readLogText(t, logPath(hostCfg, hostCtr))
	nodeName, _ := os.Hostname()
	if !strings.Contains(hostText, p.net.Bridge+":") {
		t.Errorf("the host-network container does not see the node's bridge %s:\n%s", p.net.Bridge, hostText)
	}
	if !strings.Contains(hostText, "hostname="+nodeName+"\n") {
		t.Errorf("the host-network container's hostname is not the node's %q:\n%s", nodeName, hostText)
	}

	st := p.podStatus(hostPod)
	if ip := st.GetNetwork().GetIp(); ip != "" {
		t.Errorf("host-network pod reports IP %q; it has none of its own", ip)
	}
	if st.GetLinux().GetNamespaces().GetOptions().GetNetwork() != runtimeapi.NamespaceMode_NODE {
		t.Errorf("host-network pod status namespaces: %v", st.GetLinux().GetNamespaces())
	}
	if info := p.podInfo(hostPod); info["netns"] != "" {
		t.Errorf("host-network pod has a network namespace %v", info["netns"])
	}
	if _, err := os.Stat(filepath.Join(p.state, "pods", hostPod, "ns", "net")); !os.IsNotExist(err) {
		t.Errorf("host-network pod has a netns file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.state, "pods", pod, "ns", "net")); err != nil {
		t.Errorf("the other pod's netns file: %v", err)
	}
	if got := p.net.BridgePorts(); got != ports {
		t.Errorf("bridge ports changed with a host-network pod:\nbefore %s\nafter %s", ports, got)
	}
	for _, id := range []string{hostPod, pod} {
		if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
	}
}
