package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// cniPluginDir is where Debian's containernetworking-plugins puts the
// plugins; both runtimes get it.
const cniPluginDir = "/usr/lib/cni"

// testNetwork is the pod network both runtimes share for the benchmark: one
// CNI config (bridge, host-local, portmap, loopback) with a bridge and a
// 10.99.x.0/24 of its own, a DROP rule that keeps the subnet's traffic on
// the bridge, and what the host looked like before, so that cleanup
// removes exactly what the benchmark made.
type testNetwork struct {
	name    string // CNI network name
	bridge  string
	subnet  *net.IPNet
	confDir string // holds the one conflist
	dataDir string // host-local leases

	dropRule       []string // FORWARD rule, without -I/-D
	tablesBefore   map[[2]string]bool
	hostportBefore map[string]bool
	forwardBefore  string
	cacheBefore    map[string]bool // what of /var/lib/cni existed
}

// nftTables are the tables iptables-nft creates on first use; portmap
// touches the IPv6 nat table even for IPv4-only pods.
var nftTables = [][2]string{{"ip", "nat"}, {"ip6", "nat"}, {"ip", "filter"}}

// libcniCache is libcni's default results cache, which containerd 1.6 uses
// (berthd keeps its own under its state dir).
const libcniCache = "/var/lib/cni"

// setupTestNetwork writes the conflist under dir and inserts the DROP
// rule. The returned network's cleanup must run even when setup fails
// half way; it is non-nil whenever something may have been changed.
func setupTestNetwork(dir string) (*testNetwork, error) {
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniPluginDir, p)); err != nil {
			return nil, fmt.Errorf("CNI plugin %s: %w (apt-get install containernetworking-plugins)", p, err)
		}
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s: %w", tool, err)
		}
	}
	suffix := randomHex(3)
	n := &testNetwork{
		name:    "berth-bench-" + suffix,
		bridge:  "bbench" + suffix,
		confDir: filepath.Join(dir, "net.d"),
		dataDir: filepath.Join(dir, "ipam"),
	}
	subnet, err := pickSubnet()
	if err != nil {
		return nil, err
	}
	n.subnet = subnet
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		return nil, err
	}
	conf, err := n.conflist()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(n.confDir, "10-bench.conflist"), conf, 0o644); err != nil {
		return nil, err
	}

	n.tablesBefore = map[[2]string]bool{}
	for _, tb := range nftTables {
		n.tablesBefore[tb] = nftTableExists(tb[0], tb[1])
	}
	n.hostportBefore = hostportChains()
	n.forwardBefore = readTrimmed("/proc/sys/net/ipv4/ip_forward")
	n.cacheBefore = map[string]bool{}
	for _, d := range []string{libcniCache, filepath.Join(libcniCache, "results")} {
		_, err := os.Stat(d)
		n.cacheBefore[d] = err == nil
	}

	// Nothing from the pod subnet may leave it through this host.
	s := n.subnet.String()
	n.dropRule = []string{"FORWARD", "-s", s, "!", "-d", s, "-j", "DROP"}
	if _, err := runTool("iptables", append([]string{"-I"}, n.dropRule...)...); err != nil {
		n.dropRule = nil
		return n, err
	}
	return n, nil
}

// conflist is the CNI config both runtimes read: a bridge without
// masquerade, host-local leases under the benchmark's directory, portmap
// without SNAT, and loopback.
func (n *testNetwork) conflist() ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.name,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      n.bridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": n.dataDir,
					"ranges":  [][]map[string]string{{{"subnet": n.subnet.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": false},
			map[string]any{"type": "loopback"},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// bridgePorts counts the interfaces enslaved to the test bridge (one veth
// per pod with a network).
func (n *testNetwork) bridgePorts() int {
	out, err := runTool("ip", "-o", "link", "show", "master", n.bridge)
	if err != nil {
		return 0 // no bridge yet: no ports
	}
	return countLines(out)
}

func countLines(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// leasesOf lists the host-local leases (IP addresses) held for id.
func (n *testNetwork) leasesOf(id string) []string {
	dir := filepath.Join(n.dataDir, n.name)
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		// The file holds the container ID, then the interface name.
		if first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); strings.TrimSpace(first) == id {
			out = append(out, e.Name())
		}
	}
	return out
}

// cleanup removes the bridge, the DROP rule, the portmap chains and the
// nft tables the benchmark made (and only those), containerd's cached CNI
// results of ids, and restores ip_forward. Every step runs even when an
// earlier one fails.
func (n *testNetwork) cleanup(ids []string) error {
	var errs []error
	if _, err := runTool("ip", "link", "show", n.bridge); err == nil {
		if _, err := runTool("ip", "link", "del", n.bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if n.dropRule != nil {
		if _, err := runTool("iptables", append([]string{"-D"}, n.dropRule...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removePortmapRules(ids, n.hostportBefore); err != nil {
		errs = append(errs, err)
	}
	for _, tb := range nftTables {
		if !n.tablesBefore[tb] && haveNft() && nftTableEmpty(tb[0], tb[1]) {
			if _, err := runTool("nft", "delete", "table", tb[0], tb[1]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if n.forwardBefore == "0" {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.removeCNICache(ids); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeCNICache deletes what libcni cached in /var/lib/cni for the
// benchmark's network and containerd's loopback network of ids (DEL removes
// it; a failed DEL does not), then the directories if the benchmark made
// them and they are empty.
func (n *testNetwork) removeCNICache(ids []string) error {
	var errs []error
	results := filepath.Join(libcniCache, "results")
	ents, _ := os.ReadDir(results)
	for _, e := range ents {
		mine := strings.HasPrefix(e.Name(), n.name+"-")
		for _, id := range ids {
			if strings.HasPrefix(e.Name(), "cni-loopback-"+id+"-") {
				mine = true
			}
		}
		if mine {
			if err := os.Remove(filepath.Join(results, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, d := range []string{results, libcniCache} {
		if !n.cacheBefore[d] {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) && !isNotEmpty(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// pickSubnet finds a 10.99.x.0/24 that no address, route or iptables rule
// on the host mentions (tests may be using some of them at the same time).
func pickSubnet() (*net.IPNet, error) {
	addrs, _ := runTool("ip", "-o", "addr", "show")
	routes, _ := runTool("ip", "route", "show", "table", "all")
	rules, _ := runTool("iptables", "-S")
	nat, _ := runTool("iptables", "-t", "nat", "-S")
	used := addrs + routes + rules + nat
	b := make([]byte, 1)
	rand.Read(b)
	for i := 0; i < 250; i++ {
		x := (int(b[0])+i)%250 + 3
		prefix := fmt.Sprintf("10.99.%d.", x)
		if !strings.Contains(used, prefix) {
			_, n, _ := net.ParseCIDR(prefix + "0/24")
			return n, nil
		}
	}
	return nil, errors.New("no free 10.99.x.0/24 for the test network")
}

func haveNft() bool {
	_, err := exec.LookPath("nft")
	return err == nil
}

// nftTableExists says whether an nft table exists; without nft it is
// unknown and taken as existing, so that it is never deleted.
func nftTableExists(family, table string) bool {
	if !haveNft() {
		return true
	}
	_, err := runTool("nft", "list", "table", family, table)
	return err == nil
}

// nftTableEmpty reports whether an nft table holds no rules.
func nftTableEmpty(family, table string) bool {
	out, err := runTool("nft", "list", "table", family, table)
	if err != nil {
		return false
	}
	return nftListingEmpty(out)
}

// nftListingEmpty reads `nft list table` output: only the table, chain
// headers and policies, no rule.
func nftListingEmpty(out string) bool {
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

// hostportChains lists the CNI-HOSTPORT-* chains of the nat table.
func hostportChains() map[string]bool {
	out := map[string]bool{}
	if !nftTableExists("ip", "nat") {
		return out
	}
	s, _ := runTool("iptables", "-t", "nat", "-S")
	for _, c := range newChains(s, "CNI-HOSTPORT-") {
		out[c] = true
	}
	return out
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
// chains with the jumps to them, when the benchmark made them and they
// hold no rule of anyone else.
func removePortmapRules(ids []string, hostportBefore map[string]bool) error {
	out, err := runTool("iptables", "-t", "nat", "-S")
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
		runTool("iptables", "-t", "nat", "-F", c)
		runTool("iptables", "-t", "nat", "-X", c)
	}
	out, _ = runTool("iptables", "-t", "nat", "-S")
	lines = strings.Split(out, "\n")
	var errs []error
	for _, c := range newChains(out, "CNI-HOSTPORT-") {
		if hostportBefore[c] {
			continue
		}
		rules, _ := runTool("iptables", "-t", "nat", "-S", c)
		if strings.Count(strings.TrimSpace(rules), "\n") > 0 {
			continue // holds rules of someone else
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j "+c) {
				deleteNatRule(l)
			}
		}
		if _, err := runTool("iptables", "-t", "nat", "-X", c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteNatRule deletes an `iptables -S` line of the nat table.
func deleteNatRule(line string) {
	args := append([]string{"-t", "nat", "-D"}, splitQuoted(strings.TrimPrefix(line, "-A "))...)
	runTool("iptables", args...)
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

// runTool runs a host tool and returns its output; the error quotes it.
func runTool(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func readTrimmed(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
