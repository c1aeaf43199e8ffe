package main

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// Streaming sessions (see oci/shim/api/stream.go): one connection per exec
// or attach, whose end ends the session. The shim hands the session's pipes
// or pty master to the client and keeps no copy, so no byte of a session
// passes through the shim, and it runs a goroutine only while a session is
// open.

// serveSession serves one session connection; r holds what was read after
// the magic byte.
func (s *server) serveSession(conn net.Conn, r *bufio.Reader) {
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return
	}
	dec := gob.NewDecoder(r)
	var req api.SessionRequest
	if err := dec.Decode(&req); err != nil {
		log.Printf("session: read request: %v", err)
		return
	}
	sess := &session{conn: uc, dec: dec, enc: gob.NewEncoder(uc)}
	c, err := s.get(req.ID)
	if err != nil {
		sess.fail(err)
		return
	}
	switch req.Kind {
	case api.SessionExec:
		c.execSession(sess, &req)
	case api.SessionAttach:
		c.attachSession(sess, &req)
	default:
		sess.fail(api.Errorf(api.ErrInvalid, fmt.Sprintf("kind: %q is not exec or attach", req.Kind)))
	}
}

// session is the shim's end of one session connection.
type session struct {
	conn *net.UnixConn
	dec  *gob.Decoder
	enc  *gob.Encoder
}

func (s *session) fail(err error) {
	s.start(api.SessionStart{Err: err.Error()}, nil)
}

// start sends the descriptors (then closes the shim's copies) and the
// answer describing them.
func (s *session) start(st api.SessionStart, fds []int) error {
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := s.conn.WriteMsgUnix([]byte{0}, oob, nil); err != nil {
		return err
	}
	return s.enc.Encode(&st)
}

// streams are a container's attach clients and exec sessions.
type streams struct {
	mu        sync.Mutex
	out, err  *tee // the container's output, fanned out to attach clients
	stdin     bool // created with stdin: attach clients may write to it
	stdinOnce bool
	stdinShut bool                     // closed after an attach client's stdin ended (StdinOnce)
	ended     bool                     // the container exited: no new session
	sessions  map[*net.UnixConn]func() // open sessions: how to end each
}

// wrap puts tees between the container's output copiers and its log.
func (s *streams) wrap(stdout, stderr io.WriteCloser) (io.WriteCloser, io.WriteCloser) {
	s.out, s.err = &tee{w: stdout}, &tee{w: stderr}
	return s.out, s.err
}

// add registers an open session; it refuses once the container exited.
func (s *streams) add(conn *net.UnixConn, end func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	if s.sessions == nil {
		s.sessions = map[*net.UnixConn]func(){}
	}
	s.sessions[conn] = end
	return true
}

func (s *streams) remove(conn *net.UnixConn) {
	s.mu.Lock()
	delete(s.sessions, conn)
	s.mu.Unlock()
}

// end runs when the container exited and its output drained: exec'd
// processes still running (a shared PID namespace keeps them alive) are
// killed, attach clients see their connection close.
func (s *streams) end() {
	s.mu.Lock()
	s.ended = true
	ends := make([]func(), 0, len(s.sessions))
	for _, end := range s.sessions {
		ends = append(ends, end)
	}
	s.mu.Unlock()
	for _, end := range ends {
		end()
	}
}

// running refuses a session on a container that is not running.
func (c *container) running() error {
	if st := c.state(); st.Status != api.StatusRunning {
		return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s is %s, not running", c.id, st.Status))
	}
	return nil
}

// execSession runs a command in the container with the client's pipes or a
// pty, reports its exit, and kills it (with its descendants) when the
// client goes away or the container exits.
func (c *container) execSession(sess *session, req *api.SessionRequest) {
	if err := c.running(); err != nil {
		sess.fail(err)
		return
	}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		sess.fail(api.Errorf(api.ErrInvalid, "cmd: must name a command"))
		return
	}
	for _, e := range req.Env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			sess.fail(api.Errorf(api.ErrInvalid, fmt.Sprintf("env: %q is not NAME=value", e)))
			return
		}
	}
	pio := procIO{tty: req.Tty}

	// The process's ends (closed once it has them) and the client's ends
	// (closed once sent).
	var child []*os.File
	var mine []int
	closeAll := func() {
		for _, f := range child {
			f.Close()
		}
		for _, fd := range mine {
			unix.Close(fd)
		}
	}
	st := api.SessionStart{Tty: req.Tty}
	if !req.Tty {
		for _, want := range []struct {
			on    bool
			flag  *bool
			input bool
			set   func(*os.File)
		}{
			{req.Stdin, &st.Stdin, true, func(f *os.File) { pio.stdin = f }},
			{req.Stdout, &st.Stdout, false, func(f *os.File) { pio.stdout = f }},
			{req.Stderr, &st.Stderr, false, func(f *os.File) { pio.stderr = f }},
		} {
			if !want.on {
				continue
			}
			var fds [2]int
			if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
				closeAll()
				sess.fail(os.NewSyscallError("pipe2", err))
				return
			}
			theirs, ours := fds[1], fds[0]
			if want.input {
				theirs, ours = fds[0], fds[1] // the client writes, the process reads
			}
			f := os.NewFile(uintptr(theirs), "session")
			child = append(child, f)
			mine = append(mine, ours)
			want.set(f)
			*want.flag = true
		}
	}
	var p execProc
	var master *os.File
	proc, err := c.execProcess(req.Cmd, req.Env, req.Tty, req.Width, req.Height)
	if err == nil {
		p, master, err = c.h.exec(proc, pio)
	}
	// The process has its ends now (or failed); the shim keeps none.
	for _, f := range child {
		f.Close()
	}
	child = nil
	if err != nil {
		closeAll()
		sess.fail(err)
		return
	}

	// reaped guards against killing by a PID the process no longer owns.
	var mu sync.Mutex
	reaped := false
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if !reaped {
			c.killTree(p)
		}
	}

	if master != nil {
		// A plain descriptor, owned by start from now on (a File would
		// close it again when collected).
		fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		master.Close()
		if err != nil {
			kill()
			p.wait()
			sess.fail(os.NewSyscallError("fcntl", err))
			return
		}
		mine = append(mine, fd)
	}
	pid := p.pid()
	st.Pid = pid
	if !c.streams.add(sess.conn, kill) {
		kill()
		p.wait()
		closeAll()
		sess.fail(api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited", c.id)))
		return
	}
	defer c.streams.remove(sess.conn)
	if err := sess.start(st, mine); err != nil {
		kill()
	}
	go func() {
		// The client sends nothing an exec needs; its leaving ends the
		// process. Once the process is reaped, the connection is closed
		// and this read ends.
		var ctl api.SessionControl
		for sess.dec.Decode(&ctl) == nil {
		}
		kill()
	}()
	code, msg, _ := p.wait()
	mu.Lock()
	reaped = true
	mu.Unlock()
	sess.enc.Encode(&api.SessionExit{ExitCode: code, Message: msg})
}

// attachSession connects a client to the container's own stdio: a pipe per
// output stream, fed by the shim's copiers next to the log without ever
// waiting for the client, and a duplicate of the container's stdin.
func (c *container) attachSession(sess *session, req *api.SessionRequest) {
	if err := c.running(); err != nil {
		sess.fail(err)
		return
	}
	// The container's own tty decides, whatever the client asked (as in
	// containerd): a terminal has no stderr, and its master resizes.
	tty := c.spec.Process.Terminal
	var mine []int
	type out struct {
		t *tee
		c *teeClient
	}
	var outs []out
	undo := func() {
		for _, o := range outs {
			o.t.remove(o.c)
		}
	}
	st := api.SessionStart{StdinOnce: c.streams.stdinOnce}
	if req.Stdin && c.streams.stdin {
		if fd, ok := c.dupStdin(); ok {
			mine = append(mine, fd)
			st.Stdin = true
		}
	}
	for _, want := range []struct {
		on   bool
		flag *bool
		t    *tee
	}{{req.Stdout, &st.Stdout, c.streams.out}, {req.Stderr && !tty, &st.Stderr, c.streams.err}} {
		if !want.on || want.t == nil {
			continue
		}
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			undo()
			for _, fd := range mine {
				unix.Close(fd)
			}
			sess.fail(os.NewSyscallError("pipe2", err))
			return
		}
		// The shim's end never blocks: what the client does not read in
		// time is dropped (see tee).
		unix.SetNonblock(fds[1], true)
		tc := want.t.add(fds[1])
		if tc == nil {
			unix.Close(fds[0])
			continue // the stream already ended
		}
		outs = append(outs, out{want.t, tc})
		mine = append(mine, fds[0])
		*want.flag = true
	}
	if tty {
		// The pty master again, for resizing (last, as SessionStart orders
		// the descriptors).
		if fd, ok := c.dupStdin(); ok {
			mine = append(mine, fd)
			st.Tty = true
		}
	}
	if !c.streams.add(sess.conn, func() { sess.conn.Close() }) {
		undo()
		for _, fd := range mine {
			unix.Close(fd)
		}
		sess.fail(api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited", c.id)))
		return
	}
	defer c.streams.remove(sess.conn)
	defer undo()
	if err := sess.start(st, mine); err != nil {
		return
	}
	var ctl api.SessionControl
	for sess.dec.Decode(&ctl) == nil {
		if ctl.CloseStdin && st.Stdin {
			c.closeStdinOnce()
		}
	}
}

// dupStdin duplicates the container's stdin (pipe or pty master) for an
// attach client, unless the container has none or closed it.
func (c *container) dupStdin() (int, bool) {
	c.streams.mu.Lock()
	shut := c.streams.stdinShut
	c.streams.mu.Unlock()
	f, ok := c.stdin.(*os.File)
	if !ok || shut {
		return -1, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, false
	}
	nfd := -1
	// Control holds the file open: a concurrent close at exit waits.
	if err := rc.Control(func(fd uintptr) {
		nfd, _ = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || nfd < 0 {
		return -1, false
	}
	return nfd, true
}

// closeStdinOnce closes the container's stdin pipe after an attach client's
// stdin ended, if the container asked for StdinOnce. A pty master is also
// the container's output and stays open.
func (c *container) closeStdinOnce() {
	c.streams.mu.Lock()
	defer c.streams.mu.Unlock()
	if !c.streams.stdinOnce || c.streams.stdinShut || c.spec.Process.Terminal || c.stdin == nil {
		return
	}
	c.streams.stdinShut = true
	c.stdin.Close()
}
