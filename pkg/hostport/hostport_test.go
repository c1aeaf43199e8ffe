package hostport

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func TestLoopbackSelects(t *testing.T) {
	v4 := netip.MustParseAddr("10.88.0.5")
	ms := []Mapping{
		{Protocol: "tcp", HostPort: 80, ContainerPort: 8080},
		{Protocol: "udp", HostIP: "0.0.0.0", HostPort: 53, ContainerPort: 53},
		{Protocol: "tcp", HostIP: "127.0.0.1", HostPort: 81, ContainerPort: 81},
		{Protocol: "tcp", HostIP: "192.0.2.1", HostPort: 82, ContainerPort: 82},
		{Protocol: "sctp", HostPort: 83, ContainerPort: 83},
		{Protocol: "tcp", HostPort: 0, ContainerPort: 84},
		{Protocol: "tcp", HostIP: "::", HostPort: 85, ContainerPort: 85},
	}
	got := Loopback(ms, v4)
	var ports []int32
	for _, m := range got {
		ports = append(ports, m.HostPort)
	}
	if len(ports) != 3 || ports[0] != 80 || ports[1] != 53 || ports[2] != 81 {
		t.Errorf("Loopback chose host ports %v, want [80 53 81]", ports)
	}
	if got := Loopback(ms, netip.MustParseAddr("fd00::5")); len(got) != 0 {
		t.Errorf("an IPv6 pod address got %v", got)
	}
	if got := Loopback(ms, netip.Addr{}); len(got) != 0 {
		t.Errorf("no pod address got %v", got)
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T, network string) int32 {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return int32(c.LocalAddr().(*net.UDPAddr).Port)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// TestTCPForwarding stands a backend on 127.0.0.1 in for the pod: what the
// client sends arrives, the answer comes back after the client's
// half-close, and Close ends the listener and open connections.
func TestTCPForwarding(t *testing.T) {
	backend, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				in, _ := io.ReadAll(c)
				c.Write([]byte("echo:" + strings.ToUpper(string(in))))
			}()
		}
	}()
	bport := int32(backend.Addr().(*net.TCPAddr).Port)
	hport := freePort(t, "tcp")
	p := New(quietLog())
	// 127.0.0.1 stands in for the pod: Loopback only takes IPv4 targets.
	if err := p.Open("pod1", netip.MustParseAddr("127.0.0.1"), []Mapping{{Protocol: "tcp", HostPort: hport, ContainerPort: bport}}); err != nil {
		t.Fatal(err)
	}
	if n := p.Ports("pod1"); n != 1 {
		t.Fatalf("Ports = %d, want 1", n)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(hport)).String()
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "echo:HELLO" {
		t.Fatalf("answer %q, %v; want echo:HELLO", got, err)
	}

	// An open connection ends with Close.
	idle, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(50 * time.Millisecond)
	p.Close("pod1")
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(idle).ReadByte(); err == nil {
		t.Error("a connection stayed open after Close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("a connection stayed open after Close (read timed out)")
	}
	if _, err := net.DialTimeout("tcp4", addr, time.Second); err == nil {
		t.Error("the host port still accepts after Close")
	}
	if n := p.Ports("pod1"); n != 0 {
		t.Errorf("Ports after Close = %d", n)
	}
}

// TestOpenAllOrNothing: a port another socket holds fails Open and leaves
// none of the pod's other ports bound.
func TestOpenAllOrNothing(t *testing.T) {
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPort := int32(held.Addr().(*net.TCPAddr).Port)
	free := freePort(t, "tcp")
	p := New(quietLog())
	err = p.Open("pod2", netip.MustParseAddr("10.88.0.9"), []Mapping{
		{Protocol: "tcp", HostPort: free, ContainerPort: 80},
		{Protocol: "tcp", HostPort: heldPort, ContainerPort: 81},
	})
	if err == nil || !strings.Contains(err.Error(), "host port tcp/") {
		t.Fatalf("Open over a held port: %v", err)
	}
	l, err := net.Listen("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(free)).String())
	if err != nil {
		t.Fatalf("the first port stayed bound after the failed Open: %v", err)
	}
	l.Close()
	if n := p.Ports("pod2"); n != 0 {
		t.Errorf("Ports = %d after a failed Open", n)
	}
}

// TestUDPForwarding: a datagram reaches the backend and its answer comes
// back to the client's own address.
func TestUDPForwarding(t *testing.T) {
	backend, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := backend.ReadFromUDP(buf)
			if err != nil {
				return
			}
			backend.WriteToUDP([]byte("pong:"+string(buf[:n])), from)
		}
	}()
	bport := int32(backend.LocalAddr().(*net.UDPAddr).Port)
	hport := freePort(t, "udp")
	p := New(quietLog())
	defer p.CloseAll()
	if err := p.Open("pod3", netip.MustParseAddr("127.0.0.1"), []Mapping{{Protocol: "udp", HostPort: hport, ContainerPort: bport}}); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"a", "b"} {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(hport)})
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		c.Close()
		if err != nil || string(buf[:n]) != "pong:"+msg {
			t.Fatalf("client %s got %q, %v", msg, buf[:n], err)
		}
	}
}
