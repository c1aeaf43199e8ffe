package hostport

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

const (
	// udpIdle ends a client's session after this long without a packet
	// either way (the kernel's conntrack keeps UDP flows about as long).
	udpIdle = 30 * time.Second
	// udpMaxSessions bounds the sessions of one host port, and so the
	// sockets and goroutines a flood of source ports can cost.
	udpMaxSessions = 256
	// udpMaxPacket is the largest datagram carried.
	udpMaxPacket = 64 << 10
)

// udpForwarder relays datagrams between 127.0.0.1 and the pod. Each client
// address gets its own socket towards the pod, so the pod's answers find
// their way back.
type udpForwarder struct {
	l      *net.UDPConn
	target *net.UDPAddr
	log    logrus.FieldLogger

	mu       sync.Mutex
	sessions map[netip.AddrPort]*net.UDPConn
	closed   bool
	wg       sync.WaitGroup
}

func listenUDP(host, target netip.AddrPort, log logrus.FieldLogger) (*udpForwarder, error) {
	l, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(host))
	if err != nil {
		return nil, err
	}
	f := &udpForwarder{l: l, target: net.UDPAddrFromAddrPort(target), log: log, sessions: map[netip.AddrPort]*net.UDPConn{}}
	f.wg.Add(1)
	go f.receive()
	return f, nil
}

// receive forwards what clients send to the pod.
func (f *udpForwarder) receive() {
	defer f.wg.Done()
	buf := make([]byte, udpMaxPacket)
	for {
		n, from, err := f.l.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s := f.session(from)
		if s == nil {
			continue
		}
		s.SetReadDeadline(time.Now().Add(udpIdle))
		s.Write(buf[:n])
	}
}

// session returns the socket towards the pod for one client, making it on
// its first datagram; nil when the limit is reached or the pod's address
// cannot be used.
func (f *udpForwarder) session(from netip.AddrPort) *net.UDPConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sessions[from]; ok || f.closed {
		return s
	}
	if len(f.sessions) >= udpMaxSessions {
		return nil
	}
	s, err := net.DialUDP("udp4", nil, f.target)
	if err != nil {
		f.log.WithError(err).Debug("host port: pod not reachable")
		return nil
	}
	f.sessions[from] = s
	f.wg.Add(1)
	go f.reply(from, s)
	return s
}

// reply sends the pod's answers back to one client until the session has
// been idle for udpIdle.
func (f *udpForwarder) reply(to netip.AddrPort, s *net.UDPConn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.sessions, to)
		f.mu.Unlock()
		s.Close()
	}()
	buf := make([]byte, udpMaxPacket)
	s.SetReadDeadline(time.Now().Add(udpIdle))
	for {
		n, err := s.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED from an ICMP error: the pod has no listener
			// yet; the client may send again.
			continue
		}
		s.SetReadDeadline(time.Now().Add(udpIdle))
		f.l.WriteToUDPAddrPort(buf[:n], to)
	}
}

func (f *udpForwarder) close() {
	f.mu.Lock()
	f.closed = true
	sessions := make([]*net.UDPConn, 0, len(f.sessions))
	for _, s := range f.sessions {
		sessions = append(sessions, s)
	}
	f.mu.Unlock()
	f.l.Close()
	for _, s := range sessions {
		s.Close()
	}
	f.wg.Wait()
}
