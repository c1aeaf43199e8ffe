package hostport

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// dialTimeout bounds the connection to the pod; a pod that does not answer
// within it costs the client a reset, not a hang.
const dialTimeout = 5 * time.Second

// tcpForwarder accepts on 127.0.0.1 and joins each connection to the pod.
type tcpForwarder struct {
	l      net.Listener
	target string
	log    logrus.FieldLogger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func listenTCP(host, target netip.AddrPort, log logrus.FieldLogger) (*tcpForwarder, error) {
	l, err := net.Listen("tcp4", host.String())
	if err != nil {
		return nil, err
	}
	f := &tcpForwarder{l: l, target: target.String(), log: log, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *tcpForwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off instead of spinning.
			f.log.WithError(err).Warn("host port accept")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.serve(c)
	}
}

// track records a connection so that close can end it; false once closed.
func (f *tcpForwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *tcpForwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

// serve joins one client to the pod. Each direction ends with a half-close,
// so a client that shuts down its writing side still gets the answer.
func (f *tcpForwarder) serve(client net.Conn) {
	defer f.wg.Done()
	defer f.untrack(client)
	pod, err := net.DialTimeout("tcp4", f.target, dialTimeout)
	if err != nil {
		f.log.WithError(err).Debug("host port: pod not reachable")
		return
	}
	if !f.track(pod) {
		pod.Close()
		return
	}
	defer f.untrack(pod)
	done := make(chan struct{})
	go func() {
		pipe(pod, client)
		close(done)
	}()
	pipe(client, pod)
	<-done
}

// pipe copies src to dst (spliced in the kernel for TCP to TCP) and then
// closes dst's writing side.
func pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

func (f *tcpForwarder) close() {
	f.mu.Lock()
	f.closed = true
	conns := f.conns
	f.conns = map[net.Conn]struct{}{}
	f.mu.Unlock()
	f.l.Close()
	for c := range conns {
		c.Close()
	}
	f.wg.Wait()
}
