package testnet

import (
	"crypto/rand"
	"fmt"
	"net"
)

// EnableIPv6 gives the configs written from now on a second, IPv6 range:
// a random /64 of fd00::/8 (unique local addresses, never routed beyond a
// site), so that pods get an address of each family. Like the IPv4
// subnet, nothing from it may leave it through this host: an ip6tables
// FORWARD rule drops it until Close.
func (e *Env) EnableIPv6() error {
	if e.Subnet6 != nil {
		return nil
	}
	if _, err := Run("ip6tables", "-S", "FORWARD"); err != nil {
		return unavailable("ip6tables: %v", err)
	}
	b := make([]byte, 7)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	ip := make(net.IP, net.IPv6len)
	ip[0] = 0xfd
	copy(ip[1:8], b)
	subnet := &net.IPNet{IP: ip, Mask: net.CIDRMask(64, 128)}
	s := subnet.String()
	drop := []string{"FORWARD", "-s", s, "!", "-d", s, "-j", "DROP"}
	if _, err := Run("ip6tables", append([]string{"-I"}, drop...)...); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	e.mu.Lock()
	e.Subnet6, e.dropRule6 = subnet, drop
	e.mu.Unlock()
	return nil
}

// Gateway6 is the bridge's IPv6 address in the pod subnet (isGateway).
func (e *Env) Gateway6() net.IP {
	ip := append(net.IP(nil), e.Subnet6.IP...)
	ip[15] = 1
	return ip
}
