package server

import (
	"bytes"
	"context"
	"io"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/berth-runtime/berth/oci/shim"
)

// Attach prepares a streaming attach to a running container and returns
// its URL (see Attach of streamRuntime).
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	srv, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	if _, _, err := s.runningContainer(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return srv.GetAttach(req)
}

// Attach connects the client to the container's own stdio, through its
// monitor, which owns it: the client receives the output from the moment
// it attaches (output it does not read in time is dropped for it, never
// held back from the log), and writes to the container's stdin when the
// container was created with one. It returns when the container exited,
// the client went away or the server stops.
//
// The end of the client's input ends the attach, except for a container
// with stdin_once and no tty: its stdin is then closed, and the client
// keeps receiving the output until the container exits (as containerd does).
func (r *streamRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ctx, cancel := r.sessionContext(ctx)
	defer cancel()
	c, client, err := r.s.runningContainer(ctx, containerID)
	if err != nil {
		return err
	}
	sess, err := client.OpenSession(ctx, shim.SessionRequest{
		Kind:   shim.SessionAttach,
		ID:     c.ID,
		Stdin:  in != nil,
		Stdout: out != nil,
		Stderr: errOut != nil,
		Tty:    tty,
	})
	if err != nil {
		return shimError(err)
	}
	_, err = pump(ctx, sess, attachIO(sess, in, out, errOut, resize))
	return err
}

func attachIO(sess *shim.Session, in io.Reader, out, errOut io.Writer, resize <-chan remotecommand.TerminalSize) sessionIO {
	sio := sessionIO{in: in, stdin: sess.Stdin}
	tty := sess.Tty != nil
	if sess.Stdout != nil {
		w := out
		if tty {
			// The monitor logs a terminal's output without "\r"; a client's
			// terminal in raw mode needs it back.
			w = &crlfWriter{w: out}
		}
		sio.outputs = append(sio.outputs, output{w, sess.Stdout})
	}
	if sess.Stderr != nil {
		sio.outputs = append(sio.outputs, output{errOut, sess.Stderr})
	}
	if tty {
		sio.resize = resize
	}
	sio.stdinDone = func() bool {
		if sess.StdinOnce && !tty {
			sess.CloseStdin()
			return false
		}
		return true
	}
	return sio
}

// crlfWriter writes "\n" as "\r\n".
type crlfWriter struct {
	w   io.Writer
	buf []byte
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	c.buf = appendCRLF(c.buf[:0], p)
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// appendCRLF appends p to dst with every "\n" as "\r\n".
func appendCRLF(dst, p []byte) []byte {
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return append(dst, p...)
		}
		dst = append(dst, p[:i]...)
		dst = append(dst, '\r', '\n')
		p = p[i+1:]
	}
}
