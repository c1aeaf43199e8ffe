package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/berth-runtime/berth/oci/shim"
)

// The streaming server: Exec, Attach and PortForward answer with a URL of
// it, holding a one-time token (valid for a minute); the client then speaks
// SPDY or websocket to that URL and the library calls the streamRuntime
// below. It is kubelet's own server (k8s.io/cri-streaming), so every client
// of kubelet's streaming protocols works.

// sessionDrainTimeout bounds how long the output of an exec'd process (or
// of an attached container) is still forwarded after its exit, when a
// process that outlives it keeps the pipe open.
const sessionDrainTimeout = 2 * time.Second

// streamService is the running streaming server.
type streamService struct {
	srv    streaming.Server
	http   *http.Server
	addr   string
	stop   context.CancelFunc // ends every session
	served chan struct{}
}

// StartStreaming starts the streaming server on the configured address
// (port 0: a free port, which the returned URLs carry).
func (s *Server) StartStreaming() error {
	l, err := net.Listen("tcp", s.cfg.Stream.Address)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := streaming.DefaultConfig
	// The listener's real address, so that port 0 yields usable URLs.
	cfg.Addr = l.Addr().String()
	srv, err := streaming.NewServer(cfg, &streamRuntime{s: s, stop: ctx})
	if err != nil {
		cancel()
		l.Close()
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(s.log.WriterLevel(logrus.DebugLevel), "", 0),
	}
	st := &streamService{srv: srv, http: hs, addr: cfg.Addr, stop: cancel, served: make(chan struct{})}
	go func() {
		defer close(st.served)
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.WithError(err).Error("streaming server stopped")
		}
	}()
	s.stream = st
	s.log.Infof("streaming server on http://%s", cfg.Addr)
	return nil
}

// StreamingAddr is the streaming server's host:port ("" when not started).
func (s *Server) StreamingAddr() string {
	if s.stream == nil {
		return ""
	}
	return s.stream.addr
}

// StopStreaming closes the streaming server and ends every session (exec'd
// processes are killed, attach clients detached, forwarded connections
// closed).
func (s *Server) StopStreaming() {
	st := s.stream
	if st == nil {
		return
	}
	st.stop()
	st.http.Close()
	<-st.served
}

// streamServer returns the library server, or Unavailable when berthd runs
// without one.
func (s *Server) streamServer() (streaming.Server, error) {
	if s.stream == nil {
		return nil, status.Error(codes.Unavailable, "the streaming server is not running")
	}
	return s.stream.srv, nil
}

// streamRuntime connects the library to the pods' monitors.
type streamRuntime struct {
	s    *Server
	stop context.Context // canceled when the server stops
}

var _ streaming.Runtime = (*streamRuntime)(nil)

// sessionContext is ctx, also canceled when the streaming server stops.
func (r *streamRuntime) sessionContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.stop, cancel)
	return ctx, func() { stop(); cancel() }
}

// output is one stream copied from a session file to the client.
type output struct {
	dst io.Writer
	src *os.File
}

// sessionIO is what pump moves between a client and a session.
type sessionIO struct {
	in      io.Reader
	outputs []output
	stdin   *os.File // nil: the client's input is not forwarded
	resize  <-chan remotecommand.TerminalSize
	// stdinDone runs when the client's input ended; true ends the
	// session.
	stdinDone func() bool
}

// copyEnd says why an output copy ended.
type copyEnd int

const (
	sourceEnded copyEnd = iota // EOF (or EIO from a pty whose last user left)
	clientGone                 // writing to the client failed
)

// copyOut copies src to dst and reports which side ended it.
func copyOut(dst io.Writer, src io.Reader) copyEnd {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return clientGone
			}
		}
		if err != nil {
			return sourceEnded
		}
	}
}

// pump moves the bytes of one session until it ends: the process exited
// (exit is its SessionExit) or the attached container exited (exit nil),
// the client went away, or ctx ended. The session is closed on return.
// Output still in the pipes at exit is forwarded first, for at most
// sessionDrainTimeout.
func pump(ctx context.Context, sess *shim.Session, sio sessionIO) (exit *shim.SessionExit, err error) {
	defer sess.Close()
	ends := make(chan copyEnd, len(sio.outputs))
	for _, o := range sio.outputs {
		go func() { ends <- copyOut(o.dst, o.src) }()
	}
	stdinEnded := make(chan struct{})
	if sio.in != nil && sio.stdin != nil {
		// This goroutine may block in the client's Read after the session
		// ended; the library closes that stream once the call returns.
		go func() {
			io.Copy(sio.stdin, sio.in)
			if sio.stdinDone() {
				close(stdinEnded)
			}
		}()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if sio.resize != nil {
		resizeDone := make(chan struct{})
		defer close(resizeDone)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case sz, ok := <-sio.resize:
					if !ok {
						return
					}
					sess.Resize(sz.Width, sz.Height)
				case <-resizeDone:
					return
				}
			}
		}()
	}
	type waited struct {
		exit shim.SessionExit
		err  error
	}
	waitc := make(chan waited, 1)
	go func() {
		// Ends when the shim reports the exit or closes the connection,
		// which sess.Close (deferred above) also does.
		e, err := sess.Wait()
		waitc <- waited{e, err}
	}()

	open := len(sio.outputs)
	for {
		select {
		case w := <-waitc:
			if w.err != nil && !errors.Is(w.err, io.EOF) {
				return nil, w.err
			}
			drain(ends, open, sessionDrainTimeout)
			if w.err != nil {
				return nil, nil // attached container exited
			}
			return &w.exit, nil
		case e := <-ends:
			open--
			if e == clientGone {
				return nil, errors.New("the client went away")
			}
		case <-stdinEnded:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// drain waits for n output copies to end, for at most d.
func drain(ends <-chan copyEnd, n int, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for ; n > 0; n-- {
		select {
		case <-ends:
		case <-t.C:
			return
		}
	}
}

// validateExec checks an ExecRequest as kubelet's streaming server does,
// naming the field.
func validateExec(req *runtimeapi.ExecRequest) error {
	if err := required("container_id", req.GetContainerId()); err != nil {
		return err
	}
	if len(req.GetCmd()) == 0 || req.GetCmd()[0] == "" {
		return invalid("cmd", "must name a command")
	}
	return validateStreams(req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty())
}

func validateAttach(req *runtimeapi.AttachRequest) error {
	if err := required("container_id", req.GetContainerId()); err != nil {
		return err
	}
	return validateStreams(req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty())
}

func validateStreams(stdin, stdout, stderr, tty bool) error {
	if !stdin && !stdout && !stderr {
		return invalid("stdin", "one of stdin, stdout and stderr must be true")
	}
	if tty && stderr {
		return invalid("stderr", "must be false with tty: a terminal has one output stream")
	}
	return nil
}

func validatePortForward(req *runtimeapi.PortForwardRequest) error {
	if err := required("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return err
	}
	for i, p := range req.GetPort() {
		if p < 1 || p > 65535 {
			return invalid(fmt.Sprintf("port[%d]", i), "%d is not a port number", p)
		}
	}
	return nil
}
