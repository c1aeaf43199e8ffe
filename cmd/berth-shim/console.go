package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// consoleSocket is where the runtime sends the pty master it made
// (--console-socket): a listening unix socket in a fresh directory under
// the temporary directory, whose path stays short enough for an address.
type consoleSocket struct {
	dir string
	l   *net.UnixListener
}

func newConsoleSocket() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "berth-pty-")
	if err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "pty.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &consoleSocket{dir: dir, l: l}, nil
}

// path is the socket's path, "" for none.
func (c *consoleSocket) path() string {
	if c == nil {
		return ""
	}
	return filepath.Join(c.dir, "pty.sock")
}

// receive takes the pty master from the runtime's connection, which waits
// in the listen queue once the runtime's command returned.
func (c *consoleSocket) receive() (*os.File, error) {
	c.l.SetDeadline(time.Now().Add(consoleTimeout))
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	f, err := conn.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return recvFile(f)
}

func (c *consoleSocket) close() {
	c.l.Close()
	os.RemoveAll(c.dir)
}

// recvFile receives one descriptor sent over a unix socket the way
// libcontainer sends a pty master: its name as the data, the descriptor
// as SCM_RIGHTS.
func recvFile(socket *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	sc, err := socket.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn int
	var rerr error
	if err := sc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), name, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN && rerr != unix.EWOULDBLOCK
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, os.NewSyscallError("recvmsg", rerr)
	}
	if n == 0 && oobn == 0 {
		return nil, errors.New("console socket closed without a descriptor")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, os.NewSyscallError("parse control message", err)
	}
	var fds []int
	for _, m := range msgs {
		r, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, os.NewSyscallError("parse unix rights", err)
		}
		fds = append(fds, r...)
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("console socket: expected one descriptor")
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
