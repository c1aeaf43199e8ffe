package network

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/pkg/netns"
	"github.com/berth-runtime/berth/test/testnet"
)

// env is one test's private network (see test/testnet) with the helpers
// these tests add on top of it.
type env struct {
	*testnet.Env
	t *testing.T
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{Env: testnet.New(t), t: t}
}

func (e *env) manager() *Manager {
	e.t.Helper()
	m, err := New(Config{ConfDir: e.ConfDir, PluginDirs: []string{testnet.PluginDir}, CacheDir: e.CacheDir})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// pod pins a network namespace for a new pod and removes it at cleanup.
func (e *env) pod() PodNetwork {
	e.t.Helper()
	id := testnet.RandHex(32)
	e.AddID(id)
	p := filepath.Join(e.t.TempDir(), "netns")
	if err := netns.New(netns.Net, p); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { netns.Remove(p) })
	return PodNetwork{ID: id, Name: "pod-" + id[:6], Namespace: "default", UID: testnet.RandHex(16), NetNS: p}
}

func TestReady(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	ok, msg := m.Ready()
	if ok || !strings.Contains(msg, "no CNI network config found in "+e.ConfDir) {
		t.Fatalf("empty dir: Ready %v %q", ok, msg)
	}
	if _, err := m.Setup(context.Background(), PodNetwork{ID: "x", NetNS: "/nonexistent"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Setup without config: %v", err)
	}
	// A broken file first in order is skipped and named in the message.
	os.WriteFile(filepath.Join(e.ConfDir, "00-broken.conflist"), []byte("{not json"), 0o644)
	if ok, msg := m.Ready(); ok || !strings.Contains(msg, "00-broken.conflist") {
		t.Fatalf("broken file only: Ready %v %q", ok, msg)
	}
	e.WriteConf("10-test.conflist")
	if ok, msg := m.Ready(); !ok {
		t.Fatalf("after writing a conflist: Ready false: %s", msg)
	}
	if name, file := m.NetworkName(); name != e.Name || filepath.Base(file) != "10-test.conflist" {
		t.Fatalf("network %q from %q", name, file)
	}
	// An edit in place (the directory's mtime does not change) is seen.
	e.Name += "-b"
	e.WriteConf("10-test.conflist")
	if name, _ := m.NetworkName(); name != e.Name {
		t.Fatalf("after editing in place: network %q, want %q", name, e.Name)
	}
	// A single-plugin .conf sorting first wins.
	os.WriteFile(filepath.Join(e.ConfDir, "05-single.conf"), []byte(`{"cniVersion": "1.0.0", "name": "single", "type": "loopback"}`), 0o644)
	if name, _ := m.NetworkName(); name != "single" {
		t.Fatalf("network %q, want single", name)
	}
	os.Remove(filepath.Join(e.ConfDir, "05-single.conf"))
	os.Remove(filepath.Join(e.ConfDir, "10-test.conflist"))
	if ok, _ := m.Ready(); ok {
		t.Fatal("Ready after removing the configs")
	}
	if err := m.Reload(); err == nil {
		t.Fatal("Reload without a config succeeded")
	}
}

func TestSetupTeardown(t *testing.T) {
	e := newEnv(t)
	e.WriteConf("10-test.conflist", testnet.PortmapConf)
	m := e.manager()
	pod := e.pod()
	ctx := context.Background()
	res, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPs) != 1 || !e.Subnet.Contains(res.IPs[0]) {
		t.Fatalf("IPs %v, want one in %s", res.IPs, e.Subnet)
	}
	podIP := res.IPs[0]
	if again, err := ResultFromRaw(res.Raw); err != nil || !again.IPs[0].Equal(podIP) {
		t.Fatalf("ResultFromRaw: %v %v", again, err)
	}
	if got := e.Leases(); len(got) != 1 || got[0] != podIP.String() {
		t.Fatalf("leases %v", got)
	}

	// Inside: eth0 with the pod IP and lo up; a server there is reachable
	// from the host through the bridge.
	var l net.Listener
	if err := netns.Do(pod.NetNS, func() error {
		eth0, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, _ := eth0.Addrs()
		found := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(podIP) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("eth0 addresses %v lack %s", addrs, podIP)
		}
		if lo, err := net.InterfaceByName("lo"); err != nil || lo.Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo not up: %v", err)
		}
		l, err = net.Listen("tcp", net.JoinHostPort(podIP.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("pong"))
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 3*time.Second)
	if err != nil {
		t.Fatalf("host to pod %s: %v", l.Addr(), err)
	}
	buf := make([]byte, 4)
	c.SetDeadline(time.Now().Add(3 * time.Second))
	n, _ := c.Read(buf)
	c.Close()
	if string(buf[:n]) != "pong" {
		t.Fatalf("read %q from the pod", buf[:n])
	}

	if err := m.Status(ctx, pod); err != nil {
		t.Fatalf("Status: %v", err)
	}

	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := e.Leases(); len(got) != 0 {
		t.Fatalf("leases after Teardown: %v", got)
	}
	if ports := e.BridgePorts(); ports != "" {
		t.Fatalf("bridge still has ports: %s", ports)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	if err := m.Status(ctx, pod); err == nil {
		t.Fatal("Status after Teardown succeeded")
	}
}

func TestHostPortRules(t *testing.T) {
	e := newEnv(t)
	e.WriteConf("10-test.conflist", testnet.PortmapConf)
	m := e.manager()
	pod := e.pod()
	hostPort := int32(30000 + mrand.Intn(20000))
	pod.PortMappings = []PortMapping{
		{HostPort: hostPort, ContainerPort: 8080, Protocol: "TCP"},
		{ContainerPort: 9090}, // no host port: not mapped
	}
	ctx := context.Background()
	res, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	dport := fmt.Sprintf("--dport %d", hostPort)
	dest := fmt.Sprintf("--to-destination %s:8080", res.IPs[0])
	rules := testnet.NATRules(t)
	if !strings.Contains(rules, "CNI-HOSTPORT-DNAT") || !strings.Contains(rules, dport) || !strings.Contains(rules, dest) {
		t.Fatalf("no DNAT rule for host port %d to %s:8080:\n%s", hostPort, res.IPs[0], rules)
	}
	if strings.Contains(rules, "9090") {
		t.Fatalf("a mapping without host port made a rule:\n%s", rules)
	}
	// Teardown takes the port mappings from the cache, not from the caller.
	bare := pod
	bare.PortMappings = nil
	if err := m.Teardown(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if rules := testnet.NATRules(t); strings.Contains(rules, dport) || strings.Contains(rules, pod.ID) {
		t.Fatalf("rules left after Teardown:\n%s", rules)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
}

func TestTeardownWithoutNetns(t *testing.T) {
	e := newEnv(t)
	e.WriteConf("10-test.conflist", testnet.PortmapConf)
	m := e.manager()
	pod := e.pod()
	pod.PortMappings = []PortMapping{{HostPort: int32(30000 + mrand.Intn(20000)), ContainerPort: 80}}
	ctx := context.Background()
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := netns.Remove(pod.NetNS); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown after the netns was removed: %v", err)
	}
	if got := e.Leases(); len(got) != 0 {
		t.Fatalf("leases after Teardown: %v", got)
	}
	if rules := testnet.NATRules(t); strings.Contains(rules, pod.ID) {
		t.Fatalf("rules left:\n%s", rules)
	}
	// The host end of the veth goes with the namespace.
	deadline := time.Now().Add(5 * time.Second)
	for e.BridgePorts() != "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ports := e.BridgePorts(); ports != "" {
		t.Fatalf("bridge ports left: %s", ports)
	}
	// A netns file left without its mount (a crash before Remove finished)
	// is not passed to the plugins either.
	if err := os.WriteFile(pod.NetNS, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown with a stale netns file: %v", err)
	}
	// A pod never set up tears down fine.
	if err := m.Teardown(ctx, e.pod()); err != nil {
		t.Fatalf("Teardown of a pod never set up: %v", err)
	}
}

func TestFailedSetupUndoes(t *testing.T) {
	e := newEnv(t)
	e.WriteConf("10-test.conflist", `{"type": "berth-no-such-plugin"}`)
	m := e.manager()
	pod := e.pod()
	ctx := context.Background()
	_, err := m.Setup(ctx, pod)
	if err == nil || !strings.Contains(err.Error(), "berth-no-such-plugin") {
		t.Fatalf("Setup: %v, want an error naming the missing plugin", err)
	}
	if got := e.Leases(); len(got) != 0 {
		t.Fatalf("leases after a failed Setup: %v", got)
	}
	if ports := e.BridgePorts(); ports != "" {
		t.Fatalf("veth left on the bridge: %s", ports)
	}
	if err := netns.Do(pod.NetNS, func() error {
		if _, err := net.InterfaceByName("eth0"); err == nil {
			return errors.New("eth0 left in the pod")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.CacheDir, "results")); len(entries) != 0 {
		t.Fatalf("cache entries after a failed Setup: %v", entries)
	}
	// Teardown of the failed pod is fine too.
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

// A config swapped after Setup does not change what Teardown undoes.
func TestTeardownUsesCachedConfig(t *testing.T) {
	e := newEnv(t)
	e.WriteConf("10-test.conflist", testnet.PortmapConf)
	m := e.manager()
	pod := e.pod()
	pod.PortMappings = []PortMapping{{HostPort: int32(30000 + mrand.Intn(20000)), ContainerPort: 80}}
	ctx := context.Background()
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	oldName := e.Name
	os.Remove(filepath.Join(e.ConfDir, "10-test.conflist"))
	e.Name = oldName + "-new"
	e.WriteConf("20-other.conflist")
	if name, _ := m.NetworkName(); name != e.Name {
		t.Fatalf("network %q", name)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatal(err)
	}
	e.Name = oldName
	if got := e.Leases(); len(got) != 0 {
		t.Fatalf("leases of the old network left: %v", got)
	}
	if rules := testnet.NATRules(t); strings.Contains(rules, pod.ID) {
		t.Fatalf("rules left:\n%s", rules)
	}
}

// TestTiming logs how long Setup and Teardown take with a plain bridge and
// with portmap on this machine.
func TestTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	e := newEnv(t)
	for _, c := range []struct {
		name  string
		extra []string
	}{{"bridge", nil}, {"bridge+portmap", []string{testnet.PortmapConf}}} {
		e.WriteConf("10-test.conflist", c.extra...)
		m := e.manager()
		var add, del []time.Duration
		for i := 0; i < 5; i++ {
			pod := e.pod()
			if c.extra != nil {
				pod.PortMappings = []PortMapping{{HostPort: int32(30000 + mrand.Intn(20000)), ContainerPort: 80}}
			}
			start := time.Now()
			if _, err := m.Setup(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			add = append(add, time.Since(start))
			start = time.Now()
			if err := m.Teardown(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			del = append(del, time.Since(start))
		}
		t.Logf("%s: Setup median %v (all %v), Teardown median %v (all %v)", c.name, median(add), add, median(del), del)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
