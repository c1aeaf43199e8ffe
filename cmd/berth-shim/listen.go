package main

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// listenUnix listens on a unix socket at addr. It does what
// net.ListenUnix does, less one thing: net reads the kernel's backlog
// limit through a 64 KiB buffer, which in a process whose heap never
// reaches its first collection stays resident for the pod's life. The
// kernel caps the backlog asked for here at that limit itself.
func listenUnix(addr string) (*net.UnixListener, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), addr)
	defer f.Close() // FileListener works on a duplicate
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		return nil, &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: addr, Net: "unix"}, Err: os.NewSyscallError("bind", err)}
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	return l.(*net.UnixListener), nil
}
