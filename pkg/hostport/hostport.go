// Package hostport carries a pod's host ports on 127.0.0.1 in user space.
//
// The portmap CNI plugin forwards host ports with DNAT. A connection to
// 127.0.0.1 can only be forwarded that way when its source is rewritten as
// well (portmap's SNAT rules plus route_localnet), or the pod would answer
// its own loopback. berthd forwards loopback connections itself instead, as
// Docker's userland proxy does, and the shipped CNI config tells portmap to
// leave 127.0.0.0/8 alone ("conditionsV4"); no masquerade is needed for
// them. Addresses other than loopback stay with portmap.
package hostport

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/sirupsen/logrus"
)

// Mapping is one host port of a pod.
type Mapping struct {
	Protocol      string // "tcp", "udp" or "sctp"
	HostIP        string // empty for every address of the node
	HostPort      int32
	ContainerPort int32
}

// Loopback returns the mappings that are reachable on 127.0.0.1 and that
// berthd carries: TCP and UDP ports bound to every address or to 127.0.0.1,
// towards an IPv4 pod address. SCTP and IPv6 stay with the CNI plugin.
func Loopback(ms []Mapping, podIP netip.Addr) []Mapping {
	if !podIP.Is4() {
		return nil
	}
	var out []Mapping
	for _, m := range ms {
		if m.HostPort <= 0 || m.ContainerPort <= 0 {
			continue
		}
		if m.Protocol != "tcp" && m.Protocol != "udp" {
			continue
		}
		switch m.HostIP {
		case "", "0.0.0.0", "127.0.0.1":
			out = append(out, m)
		}
	}
	return out
}

// Proxy holds the loopback listeners of every pod.
type Proxy struct {
	log  logrus.FieldLogger
	mu   sync.Mutex
	pods map[string][]forwarder
}

// forwarder is one listening host port.
type forwarder interface {
	close()
}

// New returns a Proxy with no pods.
func New(log logrus.FieldLogger) *Proxy {
	return &Proxy{log: log, pods: map[string][]forwarder{}}
}

// Open starts forwarding 127.0.0.1:HostPort to podIP:ContainerPort for each
// mapping Loopback selects. Either every port is bound or none is: a port
// another process holds fails the whole call. Opening a pod again replaces
// its earlier listeners.
func (p *Proxy) Open(podID string, podIP netip.Addr, ms []Mapping) error {
	p.Close(podID)
	ms = Loopback(ms, podIP)
	if len(ms) == 0 {
		return nil
	}
	var fs []forwarder
	for _, m := range ms {
		host := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(m.HostPort))
		target := netip.AddrPortFrom(podIP, uint16(m.ContainerPort))
		log := p.log.WithFields(logrus.Fields{"pod": podID, "port": fmt.Sprintf("%s/%d", m.Protocol, m.HostPort)})
		var f forwarder
		var err error
		if m.Protocol == "udp" {
			f, err = listenUDP(host, target, log)
		} else {
			f, err = listenTCP(host, target, log)
		}
		if err != nil {
			for _, f := range fs {
				f.close()
			}
			return fmt.Errorf("host port %s/%d on 127.0.0.1: %w", m.Protocol, m.HostPort, err)
		}
		fs = append(fs, f)
	}
	p.mu.Lock()
	p.pods[podID] = fs
	p.mu.Unlock()
	return nil
}

// Close stops a pod's listeners and ends the connections they carry. A pod
// with none is not an error.
func (p *Proxy) Close(podID string) {
	p.mu.Lock()
	fs := p.pods[podID]
	delete(p.pods, podID)
	p.mu.Unlock()
	for _, f := range fs {
		f.close()
	}
}

// Ports returns how many host ports the pod has open on 127.0.0.1.
func (p *Proxy) Ports(podID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pods[podID])
}

// CloseAll stops every listener (berthd's shutdown).
func (p *Proxy) CloseAll() {
	p.mu.Lock()
	ids := make([]string, 0, len(p.pods))
	for id := range p.pods {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.Close(id)
	}
}
