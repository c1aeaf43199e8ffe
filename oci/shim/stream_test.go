package shim

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// fakeShim serves one session on the other end of a socketpair: it checks
// the magic byte, reads the request, and lets serve answer.
func fakeShim(t *testing.T, serve func(conn *net.UnixConn, req api.SessionRequest, r *bufio.Reader)) *net.UnixConn {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	client, server := conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { client.Close(); server.Close() })
	go func() {
		r := bufio.NewReader(server)
		if b, err := r.ReadByte(); err != nil || b != api.SessionMagic {
			server.Close()
			return
		}
		var req api.SessionRequest
		if err := gob.NewDecoder(r).Decode(&req); err != nil {
			server.Close()
			return
		}
		serve(server, req, r)
	}()
	return client
}

// The descriptors arrive in SessionStart's order, non-blocking; the exit
// is reported by Wait.
func TestSessionStartAndExit(t *testing.T) {
	client := fakeShim(t, func(conn *net.UnixConn, req api.SessionRequest, _ *bufio.Reader) {
		if req.Kind != api.SessionExec || req.ID != "c1" || !req.Stdin || !req.Stdout {
			conn.Close()
			return
		}
		in, out := pipe(t), pipe(t)
		// The client writes stdin (in[1]) and reads stdout (out[0]).
		conn.WriteMsgUnix([]byte{0}, unix.UnixRights(in[1], out[0]), nil)
		unix.Close(in[1])
		unix.Close(out[0])
		enc := gob.NewEncoder(conn)
		enc.Encode(&api.SessionStart{Pid: 42, Stdin: true, Stdout: true})
		// Echo stdin to stdout, then report the exit.
		buf := make([]byte, 5)
		n, _ := unix.Read(in[0], buf)
		unix.Write(out[1], buf[:n])
		unix.Close(out[1])
		enc.Encode(&api.SessionExit{ExitCode: 3})
		conn.Close()
	})
	s, err := startSession(context.Background(), client, api.SessionRequest{Kind: api.SessionExec, ID: "c1", Cmd: []string{"x"}, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Pid != 42 || s.Stdin == nil || s.Stdout == nil || s.Stderr != nil || s.Tty != nil {
		t.Fatalf("session: pid %d stdin %v stdout %v stderr %v tty %v", s.Pid, s.Stdin, s.Stdout, s.Stderr, s.Tty)
	}
	if err := s.Stdout.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Errorf("stdout is not served by the poller: %v", err)
	}
	s.Stdin.Write([]byte("hello"))
	got, _ := io.ReadAll(s.Stdout)
	if string(got) != "hello" {
		t.Errorf("through the session's pipes: %q", got)
	}
	exit, err := s.Wait()
	if err != nil || exit.ExitCode != 3 {
		t.Errorf("Wait: %+v, %v", exit, err)
	}
	if _, err := s.Wait(); !errors.Is(err, io.EOF) {
		t.Errorf("Wait after the end: %v, want io.EOF", err)
	}
}

// An error from the shim keeps its kind.
func TestSessionStartError(t *testing.T) {
	client := fakeShim(t, func(conn *net.UnixConn, req api.SessionRequest, _ *bufio.Reader) {
		conn.WriteMsgUnix([]byte{0}, nil, nil)
		gob.NewEncoder(conn).Encode(&api.SessionStart{Err: api.Errorf(api.ErrNotRunning, "container c1 is stopped").Error()})
	})
	_, err := startSession(context.Background(), client, api.SessionRequest{Kind: api.SessionAttach, ID: "c1", Stdout: true})
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("start on a stopped container: %v, want ErrNotRunning", err)
	}
}

// A shim that never answers does not hold the start past its context.
func TestSessionStartTimeout(t *testing.T) {
	client := fakeShim(t, func(*net.UnixConn, api.SessionRequest, *bufio.Reader) {})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := startSession(ctx, client, api.SessionRequest{Kind: api.SessionAttach, ID: "c1", Stdout: true})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("start against a silent shim: %v after %v", err, time.Since(start))
	}
}

// CloseStdin reaches the shim as a control message.
func TestSessionCloseStdin(t *testing.T) {
	got := make(chan api.SessionControl, 1)
	client := fakeShim(t, func(conn *net.UnixConn, _ api.SessionRequest, r *bufio.Reader) {
		conn.WriteMsgUnix([]byte{0}, nil, nil)
		gob.NewEncoder(conn).Encode(&api.SessionStart{StdinOnce: true})
		var ctl api.SessionControl
		if gob.NewDecoder(r).Decode(&ctl) == nil {
			got <- ctl
		}
	})
	s, err := startSession(context.Background(), client, api.SessionRequest{Kind: api.SessionAttach, ID: "c1", Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.StdinOnce {
		t.Errorf("StdinOnce not passed on")
	}
	if err := s.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	select {
	case ctl := <-got:
		if !ctl.CloseStdin {
			t.Errorf("control message %+v", ctl)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the shim got no CloseStdin")
	}
}

func pipe(t *testing.T) [2]int {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return p
}
