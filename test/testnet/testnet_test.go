package testnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitQuoted(t *testing.T) {
	line := `CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"berth\" id: \"abc\"" -m multiport --dports 8080 -j CNI-DN-1`
	want := []string{"CNI-HOSTPORT-DNAT", "-p", "tcp", "-m", "comment", "--comment", `dnat name: "berth" id: "abc"`,
		"-m", "multiport", "--dports", "8080", "-j", "CNI-DN-1"}
	if got := splitQuoted(line); !slices.Equal(got, want) {
		t.Fatalf("splitQuoted:\n got %q\nwant %q", got, want)
	}
	if got := splitQuoted(`-A X --comment ""`); !slices.Equal(got, []string{"-A", "X", "--comment", ""}) {
		t.Fatalf("empty quoted word: %q", got)
	}
}

func TestGateway(t *testing.T) {
	_, n, _ := net.ParseCIDR("10.99.42.0/24")
	e := &Env{Subnet: n}
	if got := e.Gateway().String(); got != "10.99.42.1" {
		t.Fatalf("Gateway %s", got)
	}
	if n.IP.String() != "10.99.42.0" {
		t.Fatalf("Gateway changed the subnet: %s", n.IP)
	}
}

func TestSplitQuotedEscapes(t *testing.T) {
	got := splitQuoted(`POSTROUTING -m comment --comment "name: \"bench\" id: \"x\"" -j CNI-abc`)
	want := []string{"POSTROUTING", "-m", "comment", "--comment", `name: "bench" id: "x"`, "-j", "CNI-abc"}
	if !slices.Equal(got, want) {
		t.Errorf("splitQuoted = %q", got)
	}
}

func TestListingEmpty(t *testing.T) {
	empty := "table ip nat {\n\tchain PREROUTING {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t}\n}\n"
	if !listingEmpty(empty) {
		t.Error("empty table seen as holding rules")
	}
	if listingEmpty(strings.Replace(empty, "\t}\n}", "\t\tcounter jump CNI-HOSTPORT-DNAT\n\t}\n}", 1)) {
		t.Error("table with a rule seen as empty")
	}
}

func TestNewChains(t *testing.T) {
	listing := "-P PREROUTING ACCEPT\n-N CNI-HOSTPORT-DNAT\n-N CNI-HOSTPORT-SETMARK\n-N OTHER\n-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
	if got := strings.Join(newChains(listing, "CNI-HOSTPORT-"), ","); got != "CNI-HOSTPORT-DNAT,CNI-HOSTPORT-SETMARK" {
		t.Errorf("newChains = %s", got)
	}
}

// The bridge never masquerades; hairpin mode and the default route appear
// only when asked for; extra plugins follow it as given.
func TestConflist(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("10.99.42.0/24")
	e := &Env{Name: "berth-test-abc", Bridge: "berthbrabc", Subnet: subnet, DataDir: "/tmp/x/ipam"}
	type conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string
		Plugins    []map[string]any
	}
	parse := func() conf {
		t.Helper()
		b, err := e.Conflist(PortmapConf)
		if err != nil {
			t.Fatal(err)
		}
		var c conf
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if c.Name != e.Name || c.CNIVersion == "" || len(c.Plugins) != 2 {
			t.Fatalf("conflist = %s", b)
		}
		return c
	}
	c := parse()
	br, pm := c.Plugins[0], c.Plugins[1]
	ipam, _ := br["ipam"].(map[string]any)
	if br["type"] != "bridge" || br["bridge"] != e.Bridge || br["ipMasq"] != false || br["isGateway"] != true ||
		ipam["type"] != "host-local" || ipam["dataDir"] != e.DataDir {
		t.Errorf("bridge = %v", br)
	}
	if _, ok := br["hairpinMode"]; ok || ipam["routes"] != nil {
		t.Errorf("hairpin mode or routes not asked for: %v", br)
	}
	if ranges := fmt.Sprint(ipam["ranges"]); ranges != "[[map[subnet:10.99.42.0/24]]]" {
		t.Errorf("ranges = %s", ranges)
	}
	if pm["type"] != "portmap" || pm["snat"] != false || fmt.Sprint(pm["conditionsV4"]) != "[! -d 127.0.0.0/8]" {
		t.Errorf("portmap = %v", pm)
	}

	e.Hairpin, e.DefaultRoute = true, true
	c = parse()
	br = c.Plugins[0]
	ipam, _ = br["ipam"].(map[string]any)
	if br["hairpinMode"] != true || fmt.Sprint(ipam["routes"]) != "[map[dst:0.0.0.0/0]]" {
		t.Errorf("bridge = %v", br)
	}

	if _, err := e.Conflist(`{not json`); err == nil {
		t.Error("a plugin that is not JSON was accepted")
	}
}

func TestLeases(t *testing.T) {
	e := &Env{Name: "n", DataDir: t.TempDir()}
	dir := filepath.Join(e.DataDir, e.Name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "10.99.42.2"), []byte("aaa\r\neth0"), 0o644)
	os.WriteFile(filepath.Join(dir, "10.99.42.3"), []byte("bbb\r\neth0"), 0o644)
	os.WriteFile(filepath.Join(dir, "last_reserved_ip.0"), []byte("10.99.42.3"), 0o644)
	os.WriteFile(filepath.Join(dir, "lock"), nil, 0o644)
	if got := e.Leases(); !slices.Equal(got, []string{"10.99.42.2", "10.99.42.3"}) {
		t.Errorf("Leases = %v", got)
	}
	if got := e.LeasesOf("bbb"); !slices.Equal(got, []string{"10.99.42.3"}) {
		t.Errorf("LeasesOf(bbb) = %v", got)
	}
	if got := e.LeasesOf(""); got != nil {
		t.Errorf("LeasesOf(\"\") = %v", got)
	}
}

// Setup inserts the FORWARD rule and Close takes it away again, with the
// directory Setup made; a second Close does nothing.
func TestSetupClose(t *testing.T) {
	e, err := Setup(Options{NamePrefix: "berth-tnet-", BridgePrefix: "btnet"})
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			e.Close()
		}
	}()
	if !strings.HasPrefix(e.Name, "berth-tnet-") || !strings.HasPrefix(e.Bridge, "btnet") || e.Subnet == nil {
		t.Fatalf("env = %+v", e)
	}
	drop := "-A FORWARD -s " + e.Subnet.String() + " ! -d " + e.Subnet.String() + " -j DROP"
	if out, _ := Run("iptables", "-S", "FORWARD"); !strings.Contains(out, drop) {
		t.Fatalf("no %q in\n%s", drop, out)
	}
	if _, err := e.WriteConfFile("10-x.conflist", LoopbackConf); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(e.ConfDir)
	closed = true
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if out, _ := Run("iptables", "-S", "FORWARD"); strings.Contains(out, drop) {
		t.Errorf("%q left after Close", drop)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after Close: %v", dir, err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
