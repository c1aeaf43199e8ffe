package testnet

import (
	"net"
	"slices"
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
