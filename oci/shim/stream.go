package shim

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// Session protocol types; see oci/shim/api/stream.go.
type (
	SessionRequest = api.SessionRequest
	SessionStart   = api.SessionStart
	SessionExit    = api.SessionExit
)

const (
	SessionExec   = api.SessionExec
	SessionAttach = api.SessionAttach
)

// maxSessionFds is the most descriptors a session start carries.
const maxSessionFds = 4

// Session is an open exec or attach session: the process's (or the
// container's) stdio as files of this process, and the connection whose
// closing ends the session. The files are non-blocking, so closing one ends
// a read or write in progress.
type Session struct {
	conn *net.UnixConn
	dec  *gob.Decoder

	// Pid of the exec'd process (0 for attach).
	Pid int
	// Stdin is written to; nil when not granted. For a tty exec it is Tty.
	Stdin *os.File
	// Stdout and Stderr are read from; nil when not requested.
	Stdout, Stderr *os.File
	// Tty is the pty master: of a tty exec for its input, output and
	// resizing; of a tty container's attach for resizing only.
	Tty *os.File
	// StdinOnce: the attached container closes its stdin when this
	// client's stdin ends; call CloseStdin then.
	StdinOnce bool

	encMu sync.Mutex
	enc   *gob.Encoder

	closeOnce sync.Once
}

// OpenSession starts an exec or attach session. ctx bounds the start only;
// the session lasts until Close or the end of the process or container.
func (c *Client) OpenSession(ctx context.Context, req SessionRequest) (*Session, error) {
	addr, release, err := api.SocketAddr(filepath.Dir(c.sock))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", addr)
	release()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	conn := nc.(*net.UnixConn)
	s, err := startSession(ctx, conn, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func startSession(ctx context.Context, conn *net.UnixConn, req SessionRequest) (*Session, error) {
	// The deadline covers the whole start; a canceled ctx ends it at once.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultCallTimeout)
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write([]byte{api.SessionMagic}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	s := &Session{conn: conn, dec: gob.NewDecoder(conn), enc: gob.NewEncoder(conn)}
	if err := s.enc.Encode(&req); err != nil {
		return nil, fmt.Errorf("%w: send session request: %v", ErrShimGone, err)
	}
	fds, err := recvFds(conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: receive session: %v", ErrShimGone, err)
	}
	var st SessionStart
	if err := s.dec.Decode(&st); err != nil {
		closeFds(fds)
		return nil, fmt.Errorf("%w: read session start: %v", ErrShimGone, err)
	}
	if st.Err != "" {
		closeFds(fds)
		return nil, parseError(st.Err)
	}
	if len(fds) != st.FdCount() {
		closeFds(fds)
		return nil, fmt.Errorf("shim: session: got %d descriptors for %d streams", len(fds), st.FdCount())
	}
	files, err := pollable(fds)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		on  bool
		dst **os.File
	}{{st.Stdin, &s.Stdin}, {st.Stdout, &s.Stdout}, {st.Stderr, &s.Stderr}, {st.Tty, &s.Tty}} {
		if f.on {
			*f.dst, files = files[0], files[1:]
		}
	}
	if req.Kind == SessionExec && s.Tty != nil && req.Stdin {
		s.Stdin = s.Tty
	}
	s.Pid, s.StdinOnce = st.Pid, st.StdinOnce
	conn.SetDeadline(time.Time{})
	return s, nil
}

// recvFds reads the byte that carries the session's descriptors.
func recvFds(conn *net.UnixConn) ([]int, error) {
	oob := make([]byte, unix.CmsgSpace(maxSessionFds*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 1), oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeFds(fds)
			return nil, err
		}
		fds = append(fds, got...)
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
	return fds, nil
}

// pollable makes the descriptors non-blocking files, which the runtime's
// poller serves: a Close then ends a Read or Write in progress.
func pollable(fds []int) ([]*os.File, error) {
	files := make([]*os.File, 0, len(fds))
	for i, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			for _, f := range files {
				f.Close()
			}
			closeFds(fds[i:])
			return nil, os.NewSyscallError("fcntl", err)
		}
		files = append(files, os.NewFile(uintptr(fd), "session"))
	}
	return files, nil
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Wait returns when the exec'd process was reaped (its exit), or when the
// attached container exited or the session was closed (io.EOF, or
// ErrShimGone when the shim died).
func (s *Session) Wait() (SessionExit, error) {
	var e SessionExit
	if err := s.dec.Decode(&e); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return e, io.EOF
		}
		return e, fmt.Errorf("%w: session: %v", ErrShimGone, err)
	}
	return e, nil
}

// CloseStdin closes the session's stdin and tells the shim, which closes an
// attached container's stdin when it asked for StdinOnce.
func (s *Session) CloseStdin() error {
	if s.Stdin != nil && s.Stdin != s.Tty {
		s.Stdin.Close()
	}
	s.encMu.Lock()
	defer s.encMu.Unlock()
	return s.enc.Encode(&api.SessionControl{CloseStdin: true})
}

// Resize sets the terminal size of a tty session.
func (s *Session) Resize(width, height uint16) error {
	if s.Tty == nil {
		return nil
	}
	return resizeTerminal(s.Tty, width, height)
}

// Close ends the session: an exec'd process still running is killed, an
// attach client detaches. Every file of the session is closed.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.conn.Close()
		for _, f := range []*os.File{s.Stdin, s.Stdout, s.Stderr, s.Tty} {
			if f != nil {
				f.Close()
			}
		}
	})
	return nil
}

// resizeTerminal sets a pty's window size through its master.
func resizeTerminal(master *os.File, width, height uint16) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: width, Row: height})
	})
	if err != nil {
		return err
	}
	return ioctlErr
}
