package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/pkg/netns"
	"github.com/berth-runtime/berth/server/store"
)

const (
	// portForwardDialTimeout bounds the connection to the pod's port.
	portForwardDialTimeout = 10 * time.Second
	// portForwardLinger is how long the other direction may go on once one
	// direction of a forwarded connection ended (containerd's value).
	portForwardLinger = time.Second
)

// PortForward prepares forwarding to ports of a ready pod and returns the
// URL; each connection the client opens through it is dialed to
// localhost:<port> inside the pod's network namespace (see PortForward of
// streamRuntime).
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	srv, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	if _, err := readyPod(s.store, req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return srv.GetPortForward(req)
}

// readyPod returns a pod whose network can be reached.
func readyPod(st *store.Store, id string) (*store.Pod, error) {
	pod, err := st.Pod(id)
	if err != nil {
		return nil, err
	}
	if pod.Phase != store.PodReady {
		return nil, status.Errorf(codes.FailedPrecondition, "pod_sandbox_id: pod %s is %s, not ready", pod.ID, pod.Phase)
	}
	return pod, nil
}

// PortForward connects stream to localhost:port in the pod's network
// namespace (the host's, for a pod on the host network), without a helper
// process, and copies both ways until one side ends (the other then has
// portForwardLinger to finish) or the server stops.
func (r *streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	ctx, cancel := r.sessionContext(ctx)
	defer cancel()
	defer stream.Close()
	pod, err := readyPod(r.s.store, podID)
	if err != nil {
		return err
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d is not a port number", port)
	}
	conn, err := dialPod(ctx, pod.NetNS, int(port))
	if err != nil {
		return fmt.Errorf("pod %s port %d: %w", pod.ID, port, err)
	}
	defer conn.Close()
	return forward(ctx, conn, stream)
}

// dialPod dials localhost:port over IPv4, then IPv6, in the network
// namespace pinned at nsPath ("" for the host's). Only the socket is made
// inside the namespace; it stays there while it is used from any thread.
func dialPod(ctx context.Context, nsPath string, port int) (net.Conn, error) {
	d := net.Dialer{Timeout: portForwardDialTimeout}
	dial := func() (net.Conn, error) {
		conn, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			if c6, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", strconv.Itoa(port))); err6 == nil {
				return c6, nil
			}
		}
		return conn, err
	}
	if nsPath == "" {
		return dial()
	}
	var conn net.Conn
	err := netns.Do(nsPath, func() error {
		var err error
		conn, err = dial()
		return err
	})
	return conn, err
}

// forward copies between conn and stream. When the client's side ends, the
// pod's side sees EOF (a half-close) and may still answer for a while.
func forward(ctx context.Context, conn net.Conn, stream io.ReadWriteCloser) error {
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(stream, conn)
		errc <- err
	}()
	go func() {
		_, err := io.Copy(conn, stream)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		errc <- err
	}()
	var first error
	select {
	case first = <-errc:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Closing conn (deferred by the caller) and the stream ends the other
	// copy if it has not ended by then.
	select {
	case err := <-errc:
		if first == nil {
			first = err
		}
	case <-time.After(portForwardLinger):
	case <-ctx.Done():
	}
	if errors.Is(first, net.ErrClosed) {
		first = nil
	}
	return first
}
