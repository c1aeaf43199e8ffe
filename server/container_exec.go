package server

import (
	"context"
	"fmt"
	"io"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-runtime/berth/oci/shim"
)

// Exec prepares a streaming exec in a running container and returns its
// URL; the command starts when the client connects to it (see Exec of
// streamRuntime).
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	srv, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	if _, _, err := s.runningContainer(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return srv.GetExec(req)
}

// Exec runs cmd in the container with the client's streams: pipes, or a
// pseudo-terminal with tty. It returns when the process exited (an exit
// status other than 0 is a CodeExitError, which the library reports to the
// client), when the client went away or the server stops (the process is
// then killed with its descendants), or when the container exited.
func (r *streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ctx, cancel := r.sessionContext(ctx)
	defer cancel()
	c, client, err := r.s.runningContainer(ctx, containerID)
	if err != nil {
		return err
	}
	req := shim.SessionRequest{
		Kind:   shim.SessionExec,
		ID:     c.ID,
		Cmd:    cmd,
		Stdin:  in != nil,
		Stdout: out != nil,
		Stderr: errOut != nil && !tty,
		Tty:    tty,
	}
	if tty {
		// As containerd and CRI-O do: programs need a terminal type.
		req.Env = []string{"TERM=xterm"}
	}
	sess, err := client.OpenSession(ctx, req)
	if err != nil {
		return shimError(err)
	}
	sio := execIO(sess, in, out, errOut, resize)
	exit, err := pump(ctx, sess, sio)
	if err != nil {
		return err
	}
	if exit == nil {
		return fmt.Errorf("container %s exited", c.ID)
	}
	if exit.ExitCode != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", exit.ExitCode), Code: int(exit.ExitCode)}
	}
	return nil
}

// execIO wires an exec session: the end of the client's input closes the
// process's stdin; with a terminal, whose input cannot be closed apart from
// its output, it ends the session, as a client that leaves does.
func execIO(sess *shim.Session, in io.Reader, out, errOut io.Writer, resize <-chan remotecommand.TerminalSize) sessionIO {
	sio := sessionIO{in: in, stdin: sess.Stdin}
	if sess.Tty != nil {
		if out != nil {
			sio.outputs = append(sio.outputs, output{out, sess.Tty})
		} else {
			// The terminal's output must be read, or the process blocks.
			sio.outputs = append(sio.outputs, output{io.Discard, sess.Tty})
		}
		sio.resize = resize
		sio.stdinDone = func() bool { return true }
		return sio
	}
	if sess.Stdout != nil {
		sio.outputs = append(sio.outputs, output{out, sess.Stdout})
	}
	if sess.Stderr != nil {
		sio.outputs = append(sio.outputs, output{errOut, sess.Stderr})
	}
	sio.stdinDone = func() bool {
		sess.CloseStdin()
		return false
	}
	return sio
}
