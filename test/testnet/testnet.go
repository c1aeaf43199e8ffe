// Package testnet gives a test its own CNI network on the node: a bridge, a
// /24 out of 10.99.0.0/16 no address or route on the host uses, a conf dir,
// host-local leases and a libcni cache under the test's temp dir. It
// confines the test's traffic and undoes everything the plugins leave
// behind, so that tests can run on a machine that also serves other work:
//
//   - a FORWARD rule drops whatever the pod subnet sends outside itself,
//     for as long as the network exists;
//   - configs never masquerade (bridge ipMasq false, portmap snat false);
//   - at cleanup the bridge goes, and so do the portmap chains and rules
//     naming the test's pods (AddID), the CNI-HOSTPORT-* chains and the nft
//     tables iptables-nft created if they were not there before, and
//     net.ipv4.ip_forward gets its old value back.
package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// PluginDir is where Debian's containernetworking-plugins installs them.
const PluginDir = "/usr/lib/cni"

// PortmapConf is the portmap plugin without its SNAT rules: no test traffic
// is ever masqueraded. Without them a hostPort answers on the node's own
// non-loopback addresses (the bridge's gateway address, for example) but
// not on 127.0.0.1, which needs the SNAT rules and route_localnet.
const PortmapConf = `{"type": "portmap", "capabilities": {"portMappings": true}, "snat": false}`

// LoopbackConf brings lo up in the pod.
const LoopbackConf = `{"type": "loopback"}`

// Env is one test's private network.
type Env struct {
	t        testing.TB
	Bridge   string     // the bridge interface on the node
	Subnet   *net.IPNet // the pod subnet, a /24
	Name     string     // the CNI network name; WriteConf uses its current value
	ConfDir  string     // where configs are written
	DataDir  string     // host-local leases
	CacheDir string     // libcni's cache, for callers that run libcni themselves

	mu  sync.Mutex
	ids []string // container or pod IDs given to CNI, for finding leftover rules
}

// Run runs a command and returns its combined output; the error quotes it.
func Run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// RandHex returns n random bytes in hex.
func RandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pickSubnet finds a 10.99.x.0/24 that no address or route on the host uses.
func pickSubnet(t testing.TB) *net.IPNet {
	addrs, _ := Run("ip", "-o", "addr", "show")
	routes, _ := Run("ip", "route", "show", "table", "all")
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
	_, err := Run("nft", "list", "table", family, table)
	return err == nil
}

func readSysctl(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// New prepares a test network and registers its full cleanup, which also
// runs when the test fails half way. It skips the test when the node lacks
// root, the plugins or the tools.
func New(t testing.TB) *Env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(PluginDir, p)); err != nil {
			t.Skipf("CNI plugin %s not installed in %s (apt-get install containernetworking-plugins)", p, PluginDir)
		}
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	suffix := RandHex(3)
	e := &Env{
		t:        t,
		Bridge:   "berthbr" + suffix,
		Subnet:   pickSubnet(t),
		Name:     "berth-test-" + suffix,
		ConfDir:  filepath.Join(dir, "net.d"),
		DataDir:  filepath.Join(dir, "ipam"),
		CacheDir: filepath.Join(dir, "cache"),
	}
	if err := os.MkdirAll(e.ConfDir, 0o755); err != nil {
		t.Fatal(err)
	}

	// What existed before, so that cleanup removes only what the test made.
	// iptables-nft makes these tables on first use, and portmap touches the
	// IPv6 nat table even for an IPv4-only pod.
	tables := [][2]string{{"ip", "nat"}, {"ip6", "nat"}, {"ip", "filter"}}
	tablesBefore := map[[2]string]bool{}
	for _, tb := range tables {
		tablesBefore[tb] = tableExists(tb[0], tb[1])
	}
	hostportBefore := map[string]bool{}
	if tablesBefore[[2]string{"ip", "nat"}] {
		out, _ := Run("iptables", "-t", "nat", "-S")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "CNI-HOSTPORT-") {
				hostportBefore[f[1]] = true
			}
		}
	}
	forwardBefore := readSysctl("/proc/sys/net/ipv4/ip_forward")

	drop := []string{"FORWARD", "-s", e.Subnet.String(), "!", "-d", e.Subnet.String(), "-j", "DROP"}
	t.Cleanup(func() {
		Run("ip", "link", "del", e.Bridge)
		Run("iptables", append([]string{"-D"}, drop...)...)
		e.removeRules(hostportBefore)
		for _, tb := range tables {
			if !tablesBefore[tb] && tableEmpty(tb[0], tb[1]) {
				Run("nft", "delete", "table", tb[0], tb[1])
			}
		}
		if forwardBefore == "0" {
			os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644)
		}
	})
	// Nothing from the pod subnet may leave it through this host.
	if _, err := Run("iptables", append([]string{"-I"}, drop...)...); err != nil {
		t.Fatal(err)
	}
	return e
}

// AddID records an ID given to CNI as the container ID (berthd passes the
// pod ID), so that cleanup finds the portmap rules that name it.
func (e *Env) AddID(id string) {
	e.mu.Lock()
	e.ids = append(e.ids, id)
	e.mu.Unlock()
}

// Gateway is the bridge's address in the pod subnet (isGateway): an
// address of the node that reaches the pods without leaving the subnet.
func (e *Env) Gateway() net.IP {
	ip := slices.Clone(e.Subnet.IP.To4())
	ip[3] = 1
	return ip
}

// tableEmpty reports whether an nft table holds no rules.
func tableEmpty(family, table string) bool {
	out, err := Run("nft", "list", "table", family, table)
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

// removeRules deletes portmap rules and chains naming the test's IDs, and
// the CNI-HOSTPORT-* chains (with the jumps to them) if the test made them
// and nothing else uses them.
func (e *Env) removeRules(hostportBefore map[string]bool) {
	out, err := Run("iptables", "-t", "nat", "-S")
	if err != nil {
		return
	}
	e.mu.Lock()
	ids := slices.Clone(e.ids)
	e.mu.Unlock()
	lines := strings.Split(out, "\n")
	var chains []string
	for _, l := range lines {
		mine := false
		for _, id := range ids {
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
		Run("iptables", "-t", "nat", "-F", c)
		Run("iptables", "-t", "nat", "-X", c)
	}
	// The shared chains: only when this test created them and they are empty.
	out, _ = Run("iptables", "-t", "nat", "-S")
	lines = strings.Split(out, "\n")
	var ours []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "CNI-HOSTPORT-") && !hostportBefore[f[1]] {
			ours = append(ours, f[1])
		}
	}
	for _, c := range ours {
		rules, _ := Run("iptables", "-t", "nat", "-S", c)
		if strings.Count(strings.TrimSpace(rules), "\n") > 0 {
			continue // holds rules of someone else
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j "+c) {
				deleteRule(l)
			}
		}
		Run("iptables", "-t", "nat", "-X", c)
	}
}

// deleteRule deletes an "iptables -S" line of the nat table.
func deleteRule(line string) {
	args := []string{"-t", "nat", "-D"}
	args = append(args, splitQuoted(strings.TrimPrefix(line, "-A "))...)
	Run("iptables", args...)
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

// WriteConf writes a conflist named file into ConfDir: the bridge (no
// masquerade, host-local leases in DataDir) followed by the given plugins.
func (e *Env) WriteConf(file string, extra ...string) {
	e.t.Helper()
	bridge := fmt.Sprintf(`{
	"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
	"ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]]}
}`, e.Bridge, e.DataDir, e.Subnet.String())
	plugins := append([]string{bridge}, extra...)
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [%s]}`, e.Name, strings.Join(plugins, ",\n"))
	if err := os.WriteFile(filepath.Join(e.ConfDir, file), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// WriteConflist writes the network a runtime's pods use,
// 10-<name>.conflist: bridge + host-local, portmap if asked, loopback.
// It returns the file's path.
func (e *Env) WriteConflist(portmap bool) string {
	e.t.Helper()
	var extra []string
	if portmap {
		extra = append(extra, PortmapConf)
	}
	extra = append(extra, LoopbackConf)
	file := "10-" + e.Name + ".conflist"
	e.WriteConf(file, extra...)
	return filepath.Join(e.ConfDir, file)
}

// Leases lists the IPs host-local holds for the network Name.
func (e *Env) Leases() []string {
	entries, _ := os.ReadDir(filepath.Join(e.DataDir, e.Name))
	var ips []string
	for _, d := range entries {
		if net.ParseIP(d.Name()) != nil {
			ips = append(ips, d.Name())
		}
	}
	return ips
}

// BridgePorts lists the interfaces enslaved to the test bridge, one line
// each; empty when none, or when the bridge does not exist (yet).
func (e *Env) BridgePorts() string {
	if _, err := os.Stat(filepath.Join("/sys/class/net", e.Bridge)); err != nil {
		return ""
	}
	out, err := Run("ip", "-o", "link", "show", "master", e.Bridge)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}

// NATRules is `iptables -t nat -S`.
func NATRules(t testing.TB) string {
	t.Helper()
	out, err := Run("iptables", "-t", "nat", "-S")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
