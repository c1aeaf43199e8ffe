package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/pkg/netns"
)

const pluginDir = "/usr/lib/cni"

// env is one test's private network: a bridge, a /24 out of 10.99.0.0/16, a
// conf dir, host-local leases and the libcni cache under the test's temp dir.
type env struct {
	t        *testing.T
	bridge   string
	subnet   *net.IPNet
	name     string // CNI network name
	confDir  string
	dataDir  string // host-local leases
	cacheDir string
	ids      []string // container IDs used, for finding leftover rules
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pickSubnet finds a 10.99.x.0/24 that no address or route on the host uses.
func pickSubnet(t *testing.T) *net.IPNet {
	addrs, _ := run("ip", "-o", "addr", "show")
	routes, _ := run("ip", "route", "show", "table", "all")
	for _, x := range mrand.Perm(250) {
		prefix := fmt.Sprintf("10.99.%d.", x+3)
		if !strings.Contains(addrs, prefix) && !strings.Contains(routes, prefix) {
			_, n, _ := net.ParseCIDR(prefix + "0/24")
			return n
		}
	}
	t.Fatal("no free 10.99.x.0/24")
	return nil
}

// haveNft tells whether nft is there to remove the tables iptables-nft
// creates; without it (iptables recommends nftables, not depends on it)
// those empty tables are left behind.
func haveNft() bool {
	_, err := exec.LookPath("nft")
	return err == nil
}

func tableExists(family, table string) bool {
	if !haveNft() {
		return true // unknown: treat as pre-existing, never delete
	}
	_, err := run("nft", "list", "table", family, table)
	return err == nil
}

func readSysctl(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// newEnv prepares a test network and registers its full cleanup, which also
// runs when the test fails half way.
func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		if _, err := os.Stat(filepath.Join(pluginDir, p)); err != nil {
			t.Skipf("CNI plugin %s not installed in %s (apt-get install containernetworking-plugins)", p, pluginDir)
		}
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	suffix := randHex(3)
	e := &env{
		t:        t,
		bridge:   "berthbr" + suffix,
		subnet:   pickSubnet(t),
		name:     "berth-test-" + suffix,
		confDir:  filepath.Join(dir, "net.d"),
		dataDir:  filepath.Join(dir, "ipam"),
		cacheDir: filepath.Join(dir, "cache"),
	}
	os.MkdirAll(e.confDir, 0o755)

	// What existed before, so that cleanup removes only what the test made.
	// iptables-nft makes these tables on first use, and portmap touches the
	// IPv6 nat table even for an IPv4-only pod.
	tables := [][2]string{{"ip", "nat"}, {"ip6", "nat"}, {"ip", "filter"}}
	tablesBefore := map[[2]string]bool{}
	for _, tb := range tables {
		tablesBefore[tb] = tableExists(tb[0], tb[1])
	}
	natBefore := tablesBefore[[2]string{"ip", "nat"}]
	hostportBefore := map[string]bool{}
	if natBefore {
		out, _ := run("iptables", "-t", "nat", "-S")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "CNI-HOSTPORT-") {
				hostportBefore[f[1]] = true
			}
		}
	}
	forwardBefore := readSysctl("/proc/sys/net/ipv4/ip_forward")

	drop := []string{"FORWARD", "-s", e.subnet.String(), "!", "-d", e.subnet.String(), "-j", "DROP"}
	t.Cleanup(func() {
		run("ip", "link", "del", e.bridge)
		run("iptables", append([]string{"-D"}, drop...)...)
		e.removeRules(hostportBefore)
		for _, tb := range tables {
			if !tablesBefore[tb] && tableEmpty(tb[0], tb[1]) {
				run("nft", "delete", "table", tb[0], tb[1])
			}
		}
		if forwardBefore == "0" {
			os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644)
		}
	})
	// Nothing from the pod subnet may leave it through this host.
	if _, err := run("iptables", append([]string{"-I"}, drop...)...); err != nil {
		t.Fatal(err)
	}
	return e
}

// tableEmpty reports whether an nft table holds no rules.
func tableEmpty(family, table string) bool {
	out, err := run("nft", "list", "table", family, table)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "}" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") ||
			strings.HasPrefix(l, "type ") || strings.HasPrefix(l, "policy ") {
			continue
		}
		return false
	}
	return true
}

// removeRules deletes portmap rules and chains naming the test's containers,
// and the CNI-HOSTPORT-* chains (with the jumps to them) if the test made
// them and nothing else uses them.
func (e *env) removeRules(hostportBefore map[string]bool) {
	out, err := run("iptables", "-t", "nat", "-S")
	if err != nil {
		return
	}
	lines := strings.Split(out, "\n")
	var chains []string
	for _, l := range lines {
		mine := false
		for _, id := range e.ids {
			if strings.Contains(l, id) {
				mine = true
			}
		}
		if !mine || !strings.HasPrefix(l, "-A ") {
			continue
		}
		f := strings.Fields(l)
		if i := slices.Index(f, "-j"); i >= 0 && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") && !strings.HasPrefix(f[i+1], "CNI-HOSTPORT-") {
			chains = append(chains, f[i+1])
		}
		deleteRule(l)
	}
	for _, c := range chains {
		run("iptables", "-t", "nat", "-F", c)
		run("iptables", "-t", "nat", "-X", c)
	}
	// The shared chains: only when this test created them and they are empty.
	out, _ = run("iptables", "-t", "nat", "-S")
	lines = strings.Split(out, "\n")
	var ours []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "CNI-HOSTPORT-") && !hostportBefore[f[1]] {
			ours = append(ours, f[1])
		}
	}
	for _, c := range ours {
		rules, _ := run("iptables", "-t", "nat", "-S", c)
		if strings.Count(strings.TrimSpace(rules), "\n") > 0 {
			continue // holds rules of someone else
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j "+c) {
				deleteRule(l)
			}
		}
		run("iptables", "-t", "nat", "-X", c)
	}
}

// deleteRule deletes an "iptables -S" line of the nat table.
func deleteRule(line string) {
	args := []string{"-t", "nat", "-D"}
	args = append(args, splitQuoted(strings.TrimPrefix(line, "-A "))...)
	run("iptables", args...)
}

// splitQuoted splits an iptables -S line, keeping "quoted words" together.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, esc, have := false, false, false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\' && inQ:
			esc = true
		case r == '"':
			inQ = !inQ
			have = true
		case r == ' ' && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// writeConf writes a conflist with the given plugins after the bridge.
func (e *env) writeConf(file string, extra ...string) {
	e.t.Helper()
	bridge := fmt.Sprintf(`{
	"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
	"ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]]}
}`, e.bridge, e.dataDir, e.subnet.String())
	plugins := append([]string{bridge}, extra...)
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [%s]}`, e.name, strings.Join(plugins, ",\n"))
	if err := os.WriteFile(filepath.Join(e.confDir, file), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

const portmapConf = `{"type": "portmap", "capabilities": {"portMappings": true}, "snat": false}`

func (e *env) manager() *Manager {
	e.t.Helper()
	m, err := New(Config{ConfDir: e.confDir, PluginDirs: []string{pluginDir}, CacheDir: e.cacheDir})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// pod pins a network namespace for a new pod and removes it at cleanup.
func (e *env) pod() PodNetwork {
	e.t.Helper()
	id := randHex(32)
	e.ids = append(e.ids, id)
	p := filepath.Join(e.t.TempDir(), "netns")
	if err := netns.New(netns.Net, p); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { netns.Remove(p) })
	return PodNetwork{ID: id, Name: "pod-" + id[:6], Namespace: "default", UID: randHex(16), NetNS: p}
}

// leases lists the IPs host-local holds for the test network.
func (e *env) leases() []string {
	entries, _ := os.ReadDir(filepath.Join(e.dataDir, e.name))
	var ips []string
	for _, d := range entries {
		if net.ParseIP(d.Name()) != nil {
			ips = append(ips, d.Name())
		}
	}
	return ips
}

// bridgePorts lists the interfaces enslaved to the test bridge.
func (e *env) bridgePorts() string {
	out, _ := run("ip", "-o", "link", "show", "master", e.bridge)
	return strings.TrimSpace(out)
}

func natRules(t *testing.T) string {
	out, err := run("iptables", "-t", "nat", "-S")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReady(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	ok, msg := m.Ready()
	if ok || !strings.Contains(msg, "no CNI network config found in "+e.confDir) {
		t.Fatalf("empty dir: Ready %v %q", ok, msg)
	}
	if _, err := m.Setup(context.Background(), PodNetwork{ID: "x", NetNS: "/nonexistent"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Setup without config: %v", err)
	}
	// A broken file first in order is skipped and named in the message.
	os.WriteFile(filepath.Join(e.confDir, "00-broken.conflist"), []byte("{not json"), 0o644)
	if ok, msg := m.Ready(); ok || !strings.Contains(msg, "00-broken.conflist") {
		t.Fatalf("broken file only: Ready %v %q", ok, msg)
	}
	e.writeConf("10-test.conflist")
	if ok, msg := m.Ready(); !ok {
		t.Fatalf("after writing a conflist: Ready false: %s", msg)
	}
	if name, file := m.NetworkName(); name != e.name || filepath.Base(file) != "10-test.conflist" {
		t.Fatalf("network %q from %q", name, file)
	}
	// An edit in place (the directory's mtime does not change) is seen.
	e.name += "-b"
	e.writeConf("10-test.conflist")
	if name, _ := m.NetworkName(); name != e.name {
		t.Fatalf("after editing in place: network %q, want %q", name, e.name)
	}
	// A single-plugin .conf sorting first wins.
	os.WriteFile(filepath.Join(e.confDir, "05-single.conf"), []byte(`{"cniVersion": "1.0.0", "name": "single", "type": "loopback"}`), 0o644)
	if name, _ := m.NetworkName(); name != "single" {
		t.Fatalf("network %q, want single", name)
	}
	os.Remove(filepath.Join(e.confDir, "05-single.conf"))
	os.Remove(filepath.Join(e.confDir, "10-test.conflist"))
	if ok, _ := m.Ready(); ok {
		t.Fatal("Ready after removing the configs")
	}
	if err := m.Reload(); err == nil {
		t.Fatal("Reload without a config succeeded")
	}
}

func TestSetupTeardown(t *testing.T) {
	e := newEnv(t)
	e.writeConf("10-test.conflist", portmapConf)
	m := e.manager()
	pod := e.pod()
	ctx := context.Background()
	res, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPs) != 1 || !e.subnet.Contains(res.IPs[0]) {
		t.Fatalf("IPs %v, want one in %s", res.IPs, e.subnet)
	}
	podIP := res.IPs[0]
	if again, err := ResultFromRaw(res.Raw); err != nil || !again.IPs[0].Equal(podIP) {
		t.Fatalf("ResultFromRaw: %v %v", again, err)
	}
	if got := e.leases(); len(got) != 1 || got[0] != podIP.String() {
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
	if got := e.leases(); len(got) != 0 {
		t.Fatalf("leases after Teardown: %v", got)
	}
	if ports := e.bridgePorts(); ports != "" {
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
	e.writeConf("10-test.conflist", portmapConf)
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
	rules := natRules(t)
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
	if rules := natRules(t); strings.Contains(rules, dport) || strings.Contains(rules, pod.ID) {
		t.Fatalf("rules left after Teardown:\n%s", rules)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
}

func TestTeardownWithoutNetns(t *testing.T) {
	e := newEnv(t)
	e.writeConf("10-test.conflist", portmapConf)
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
	if got := e.leases(); len(got) != 0 {
		t.Fatalf("leases after Teardown: %v", got)
	}
	if rules := natRules(t); strings.Contains(rules, pod.ID) {
		t.Fatalf("rules left:\n%s", rules)
	}
	// The host end of the veth goes with the namespace.
	deadline := time.Now().Add(5 * time.Second)
	for e.bridgePorts() != "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ports := e.bridgePorts(); ports != "" {
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
	e.writeConf("10-test.conflist", `{"type": "berth-no-such-plugin"}`)
	m := e.manager()
	pod := e.pod()
	ctx := context.Background()
	_, err := m.Setup(ctx, pod)
	if err == nil || !strings.Contains(err.Error(), "berth-no-such-plugin") {
		t.Fatalf("Setup: %v, want an error naming the missing plugin", err)
	}
	if got := e.leases(); len(got) != 0 {
		t.Fatalf("leases after a failed Setup: %v", got)
	}
	if ports := e.bridgePorts(); ports != "" {
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
	if entries, _ := os.ReadDir(filepath.Join(e.cacheDir, "results")); len(entries) != 0 {
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
	e.writeConf("10-test.conflist", portmapConf)
	m := e.manager()
	pod := e.pod()
	pod.PortMappings = []PortMapping{{HostPort: int32(30000 + mrand.Intn(20000)), ContainerPort: 80}}
	ctx := context.Background()
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	oldName := e.name
	os.Remove(filepath.Join(e.confDir, "10-test.conflist"))
	e.name = oldName + "-new"
	e.writeConf("20-other.conflist")
	if name, _ := m.NetworkName(); name != e.name {
		t.Fatalf("network %q", name)
	}
	if err := m.Teardown(ctx, pod); err != nil {
		t.Fatal(err)
	}
	e.name = oldName
	if got := e.leases(); len(got) != 0 {
		t.Fatalf("leases of the old network left: %v", got)
	}
	if rules := natRules(t); strings.Contains(rules, pod.ID) {
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
	}{{"bridge", nil}, {"bridge+portmap", []string{portmapConf}}} {
		e.writeConf("10-test.conflist", c.extra...)
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
