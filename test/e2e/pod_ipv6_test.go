package e2e

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testnet"
)

// TestDualStackPod gives the test network an IPv6 range beside the IPv4
// one: the pod reports both addresses (IPv4 first, as kubelet expects the
// primary family first), both reach its server from the node, its
// /etc/hosts names both, and stopping it releases both leases.
func TestDualStackPod(t *testing.T) {
	p := startPodDaemonWith(t, podDaemonOptions{conflist: func(env *testnet.Env) {
		if err := env.EnableIPv6(); errors.Is(err, testnet.ErrUnavailable) {
			t.Skip(err)
		} else if err != nil {
			t.Fatal(err)
		}
		env.WriteConflist(false)
	}})
	p.mustPull("busybox")
	podCfg := p.podConfig("dual-stack")
	pod := p.runPod(podCfg)
	ctr := p.runCtr(pod, podCfg, ctrConfig("server", "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "both-families"))

	st := p.podStatus(pod).GetNetwork()
	v4 := net.ParseIP(st.GetIp())
	if v4 == nil || v4.To4() == nil || !p.net.Subnet.Contains(v4) {
		t.Fatalf("primary IP %q is not an IPv4 address of %s", st.GetIp(), p.net.Subnet)
	}
	if len(st.GetAdditionalIps()) != 1 {
		t.Fatalf("additional IPs %v, want one IPv6 address", st.GetAdditionalIps())
	}
	v6 := net.ParseIP(st.GetAdditionalIps()[0].GetIp())
	if v6 == nil || v6.To4() != nil || !p.net.Subnet6.Contains(v6) {
		t.Fatalf("additional IP %q is not an IPv6 address of %s", st.GetAdditionalIps()[0].GetIp(), p.net.Subnet6)
	}

	waitAnswer(t, net.JoinHostPort(v4.String(), "8080"), "both-families", 15*time.Second)
	// IPv6 duplicate address detection can hold a new address back for a
	// moment; waitAnswer retries.
	waitAnswer(t, net.JoinHostPort(v6.String(), "8080"), "both-families", 15*time.Second)

	res, err := p.execSync(ctr, 10, "cat", "/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	hosts := string(res.Stdout)
	for _, ip := range []net.IP{v4, v6} {
		if !strings.Contains(hosts, ip.String()+"\t") && !strings.Contains(hosts, ip.String()+" ") {
			t.Errorf("/etc/hosts of the pod does not name %s:\n%s", ip, hosts)
		}
	}

	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if leases := p.net.LeasesOf(pod); len(leases) != 0 {
		t.Errorf("leases left after StopPodSandbox: %v", leases)
	}
}
