// Package testnet gives a test, or the benchmark, its own CNI network on
// the node: a bridge, a /24 out of 10.99.0.0/16 that no address, route or
// iptables rule on the host uses, a conf dir, host-local leases and a libcni
// cache in a directory of its own. It confines the network's traffic and
// undoes everything the plugins leave behind, so that it can run on a
// machine that also serves other work:
//
//   - a FORWARD rule drops whatever the pod subnet sends outside itself,
//     for as long as the network exists;
//   - configs never masquerade (bridge ipMasq false, portmap snat false;
//     portmap leaves 127.0.0.0/8 alone);
//   - Close removes the bridge, the portmap chains and rules naming the
//     pods (AddID), the CNI-HOSTPORT-* chains and the nft tables
//     iptables-nft created if they were not there before, and gives
//     net.ipv4.ip_forward its old value back.
//
// Setup and Close need no testing.TB; New wraps them for a test.
package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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
// is ever masqueraded. It forwards host ports on the node's own addresses
// other than loopback (the bridge's gateway address, for example) and
// leaves 127.0.0.0/8 to berthd, which carries those connections itself, as
// the shipped config does.
const PortmapConf = `{"type": "portmap", "capabilities": {"portMappings": true}, "snat": false, "conditionsV4": ["!", "-d", "127.0.0.0/8"]}`

// LoopbackConf brings lo up in the pod.
const LoopbackConf = `{"type": "loopback"}`

// ErrUnavailable marks Setup errors that come from the node rather than
// from the network: no root, a plugin or tool missing. New skips the test
// on them instead of failing it.
var ErrUnavailable = errors.New("the node cannot host a test network")

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// Options tells Setup where and under what names to make the network.
type Options struct {
	// Dir holds net.d, ipam and cache. Empty: a new temporary directory,
	// which Close removes.
	Dir string
	// NamePrefix starts the CNI network name, six random hex digits end
	// it; empty: "berth-test-".
	NamePrefix string
	// BridgePrefix starts the bridge's name, six random hex digits end it;
	// empty: "berthbr". An interface name has at most 15 bytes.
	BridgePrefix string
}

// Env is one private network.
type Env struct {
	t        testing.TB // set by New, for WriteConf and WriteConflist
	Bridge   string     // the bridge interface on the node
	Subnet   *net.IPNet // the pod subnet, a /24
	Subnet6  *net.IPNet // the IPv6 pod subnet, a /64, once EnableIPv6 ran
	Name     string     // the CNI network name; WriteConf uses its current value
	ConfDir  string     // where configs are written
	DataDir  string     // host-local leases
	CacheDir string     // libcni's cache, for callers that run libcni themselves

	// Hairpin sets the bridge's hairpinMode in the configs written from
	// now on, so that a pod reaches itself through its own hostPort.
	Hairpin bool
	// DefaultRoute gives pods a default route through the bridge in the
	// configs written from now on, as runtimes' stock configs do; the
	// FORWARD rule still keeps the traffic inside the subnet.
	DefaultRoute bool

	mu     sync.Mutex
	ids    []string // container or pod IDs given to CNI, for finding leftover rules
	closed bool

	// What the host looked like before, so that Close removes only what
	// the network made.
	removeDir      string // the temporary Dir Setup made
	dropRule       []string
	dropRule6      []string
	tablesBefore   map[[2]string]bool
	hostportBefore map[string]bool
	forwardBefore  string
}

// nftTables are the tables iptables-nft makes on first use; portmap
// touches the IPv6 nat table even for an IPv4-only pod.
var nftTables = [][2]string{{"ip", "nat"}, {"ip6", "nat"}, {"ip", "filter"}, {"ip6", "filter"}}

// Run runs a command and returns its combined output; the error quotes it.
func Run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// RandHex returns n random bytes in hex.
func RandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Setup makes a network: it checks the node, records what the host looks
// like, picks a subnet and inserts the FORWARD rule. The bridge appears
// with the first pod. On error it has undone what it did; otherwise the
// caller must Close the network, also when its own work fails half way.
func Setup(o Options) (*Env, error) {
	if os.Geteuid() != 0 {
		return nil, unavailable("needs root")
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(PluginDir, p)); err != nil {
			return nil, unavailable("CNI plugin %s not installed in %s (apt-get install containernetworking-plugins)", p, PluginDir)
		}
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, unavailable("%s not installed", tool)
		}
	}
	if o.NamePrefix == "" {
		o.NamePrefix = "berth-test-"
	}
	if o.BridgePrefix == "" {
		o.BridgePrefix = "berthbr"
	}
	suffix := RandHex(3)
	bridge := o.BridgePrefix + suffix
	if len(bridge) > 15 {
		return nil, fmt.Errorf("bridge name %q longer than 15 bytes", bridge)
	}
	e := &Env{Bridge: bridge, Name: o.NamePrefix + suffix}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "berth-testnet-")
		if err != nil {
			return nil, err
		}
		dir, e.removeDir = d, d
	}
	e.ConfDir = filepath.Join(dir, "net.d")
	e.DataDir = filepath.Join(dir, "ipam")
	e.CacheDir = filepath.Join(dir, "cache")

	// Recorded before anything below lists iptables, which may make the
	// tables; listing the nat table only if it exists, for the same reason.
	e.tablesBefore = map[[2]string]bool{}
	for _, tb := range nftTables {
		e.tablesBefore[tb] = tableExists(tb[0], tb[1])
	}
	e.hostportBefore = map[string]bool{}
	if e.tablesBefore[[2]string{"ip", "nat"}] {
		out, _ := Run("iptables", "-t", "nat", "-S")
		for _, c := range newChains(out, "CNI-HOSTPORT-") {
			e.hostportBefore[c] = true
		}
	}
	e.forwardBefore = readSysctl("/proc/sys/net/ipv4/ip_forward")

	fail := func(err error) (*Env, error) {
		return nil, errors.Join(err, e.Close())
	}
	if err := os.MkdirAll(e.ConfDir, 0o755); err != nil {
		return fail(err)
	}
	subnet, err := pickSubnet()
	if err != nil {
		return fail(err)
	}
	e.Subnet = subnet

	// Nothing from the pod subnet may leave it through this host.
	s := subnet.String()
	drop := []string{"FORWARD", "-s", s, "!", "-d", s, "-j", "DROP"}
	if _, err := Run("iptables", append([]string{"-I"}, drop...)...); err != nil {
		return fail(err)
	}
	e.dropRule = drop
	return e, nil
}

// New prepares a test network and registers Close as a cleanup, which
// also runs when the test fails half way. It skips the test when the node
// lacks root, the plugins or the tools.
func New(t testing.TB) *Env {
	t.Helper()
	e, err := Setup(Options{Dir: t.TempDir()})
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	e.t = t
	t.Cleanup(func() {
		// Only logged: tests running at the same time share the
		// CNI-HOSTPORT-* chains and nft tables, and may race to remove
		// them.
		if err := e.Close(); err != nil {
			t.Logf("testnet: %v", err)
		}
	})
	return e
}

// Close removes the bridge, the FORWARD rule, the portmap rules naming the
// IDs given to AddID, the CNI-HOSTPORT-* chains and nft tables the network
// made (and only those), restores ip_forward, and removes the directory
// Setup made. Every step runs even when an earlier one fails. Calling it
// again does nothing.
func (e *Env) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ids := slices.Clone(e.ids)
	e.mu.Unlock()

	var errs []error
	if e.Bridge != "" {
		if _, err := os.Stat(filepath.Join("/sys/class/net", e.Bridge)); err == nil {
			if _, err := Run("ip", "link", "del", e.Bridge); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if e.dropRule != nil {
		if _, err := Run("iptables", append([]string{"-D"}, e.dropRule...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if e.dropRule6 != nil {
		if _, err := Run("ip6tables", append([]string{"-D"}, e.dropRule6...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removePortmapRules(ids, e.hostportBefore); err != nil {
		errs = append(errs, err)
	}
	for _, tb := range nftTables {
		if !e.tablesBefore[tb] && tableEmpty(tb[0], tb[1]) {
			if _, err := Run("nft", "delete", "table", tb[0], tb[1]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if e.forwardBefore == "0" {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	if e.removeDir != "" {
		if err := os.RemoveAll(e.removeDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AddID records an ID given to CNI as the container ID (berthd passes the
// pod ID), so that Close finds the portmap rules that name it.
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

// pickSubnet finds a 10.99.x.0/24 that no address, route or iptables rule
// on the host mentions (other networks of this package may be using some
// of them at the same time).
func pickSubnet() (*net.IPNet, error) {
	addrs, _ := Run("ip", "-o", "addr", "show")
	routes, _ := Run("ip", "route", "show", "table", "all")
	rules, _ := Run("iptables", "-S")
	nat, _ := Run("iptables", "-t", "nat", "-S")
	used := addrs + routes + rules + nat
	for _, x := range mrand.Perm(250) {
		prefix := fmt.Sprintf("10.99.%d.", x+3)
		if !strings.Contains(used, prefix) {
			_, n, _ := net.ParseCIDR(prefix + "0/24")
			return n, nil
		}
	}
	return nil, errors.New("no free 10.99.x.0/24 for the test network")
}

// haveNft tells whether nft is there to remove the tables iptables-nft
// creates; without it (iptables recommends nftables, not depends on it)
// those empty tables are left behind.
func haveNft() bool {
	_, err := exec.LookPath("nft")
	return err == nil
}

// tableExists says whether an nft table exists; without nft it is unknown
// and taken as existing, so that it is never deleted.
func tableExists(family, table string) bool {
	if !haveNft() {
		return true
	}
	_, err := Run("nft", "list", "table", family, table)
	return err == nil
}

// tableEmpty reports whether an nft table holds no rules.
func tableEmpty(family, table string) bool {
	if !haveNft() {
		return false
	}
	out, err := Run("nft", "list", "table", family, table)
	if err != nil {
		return false
	}
	return listingEmpty(out)
}

// listingEmpty reads `nft list table` output: only the table, chain
// headers and policies, no rule.
func listingEmpty(out string) bool {
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

func readSysctl(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// newChains lists the chains (-N lines) of an `iptables -S` listing whose
// names start with prefix.
func newChains(listing, prefix string) []string {
	var out []string
	for _, l := range strings.Split(listing, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], prefix) {
			out = append(out, f[1])
		}
	}
	return out
}

// removePortmapRules deletes nat rules naming ids (portmap's per-pod
// chains, made only for pods with port mappings) and the CNI-HOSTPORT-*
// chains with the jumps to them, when the network made them and they hold
// no rule of anyone else.
func removePortmapRules(ids []string, hostportBefore map[string]bool) error {
	out, err := Run("iptables", "-t", "nat", "-S")
	if err != nil {
		return nil // no nat table: nothing to remove
	}
	lines := strings.Split(out, "\n")
	var chains []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A ") || !slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(l, id) }) {
			continue
		}
		f := strings.Fields(l)
		if i := slices.Index(f, "-j"); i >= 0 && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") && !strings.HasPrefix(f[i+1], "CNI-HOSTPORT-") {
			chains = append(chains, f[i+1])
		}
		deleteNatRule(l)
	}
	for _, c := range chains {
		Run("iptables", "-t", "nat", "-F", c)
		Run("iptables", "-t", "nat", "-X", c)
	}
	// The shared chains: only when this network made them and they are
	// empty.
	out, _ = Run("iptables", "-t", "nat", "-S")
	lines = strings.Split(out, "\n")
	var errs []error
	for _, c := range newChains(out, "CNI-HOSTPORT-") {
		if hostportBefore[c] {
			continue
		}
		rules, _ := Run("iptables", "-t", "nat", "-S", c)
		if strings.Count(strings.TrimSpace(rules), "\n") > 0 {
			continue // holds rules of someone else
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j "+c) {
				deleteNatRule(l)
			}
		}
		if _, err := Run("iptables", "-t", "nat", "-X", c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteNatRule deletes an `iptables -S` line of the nat table.
func deleteNatRule(line string) {
	args := append([]string{"-t", "nat", "-D"}, splitQuoted(strings.TrimPrefix(line, "-A "))...)
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

// Conflist is a conflist of the network Name: the bridge (no masquerade,
// host-local leases in DataDir) followed by the given plugins, each a
// JSON object.
func (e *Env) Conflist(extra ...string) ([]byte, error) {
	ipam := map[string]any{
		"type":    "host-local",
		"dataDir": e.DataDir,
		"ranges":  [][]map[string]string{{{"subnet": e.Subnet.String()}}},
	}
	if e.Subnet6 != nil {
		ipam["ranges"] = [][]map[string]string{{{"subnet": e.Subnet.String()}}, {{"subnet": e.Subnet6.String()}}}
	}
	if e.DefaultRoute {
		ipam["routes"] = []map[string]string{{"dst": "0.0.0.0/0"}}
	}
	bridge := map[string]any{"type": "bridge", "bridge": e.Bridge, "isGateway": true, "ipMasq": false, "ipam": ipam}
	if e.Hairpin {
		bridge["hairpinMode"] = true
	}
	plugins := []any{bridge}
	for _, p := range extra {
		plugins = append(plugins, json.RawMessage(p))
	}
	return json.MarshalIndent(map[string]any{"cniVersion": "1.0.0", "name": e.Name, "plugins": plugins}, "", "  ")
}

// WriteConfFile writes Conflist(extra...) as file into ConfDir and
// returns its path.
func (e *Env) WriteConfFile(file string, extra ...string) (string, error) {
	conf, err := e.Conflist(extra...)
	if err != nil {
		return "", err
	}
	p := filepath.Join(e.ConfDir, file)
	return p, os.WriteFile(p, conf, 0o644)
}

// WriteConf is WriteConfFile for an Env from New: it fails the test on
// error.
func (e *Env) WriteConf(file string, extra ...string) {
	e.t.Helper()
	if _, err := e.WriteConfFile(file, extra...); err != nil {
		e.t.Fatal(err)
	}
}

// WriteConflist writes the network a runtime's pods use,
// 10-<name>.conflist: bridge + host-local, portmap if asked, loopback.
// It returns the file's path. Like WriteConf, it is for an Env from New.
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
	return e.leasesOf("")
}

// LeasesOf lists the IPs host-local holds for the network Name and the
// container ID id.
func (e *Env) LeasesOf(id string) []string {
	if id == "" {
		return nil
	}
	return e.leasesOf(id)
}

// leasesOf lists the lease files of id, or all of them when id is empty. A
// lease file holds the container ID, then the interface name.
func (e *Env) leasesOf(id string) []string {
	dir := filepath.Join(e.DataDir, e.Name)
	entries, _ := os.ReadDir(dir)
	var ips []string
	for _, d := range entries {
		if net.ParseIP(d.Name()) == nil {
			continue
		}
		if id != "" {
			b, err := os.ReadFile(filepath.Join(dir, d.Name()))
			if err != nil {
				continue
			}
			if first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); strings.TrimSpace(first) != id {
				continue
			}
		}
		ips = append(ips, d.Name())
	}
	return ips
}

// BridgePorts lists the interfaces enslaved to the bridge, one line each;
// empty when none, or when the bridge does not exist (yet).
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
