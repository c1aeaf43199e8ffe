package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// execFifo is the FIFO in a libcontainer container's state directory on
// which its init, once created, waits: it opens the FIFO for writing,
// writes one byte when a reader opens it, and execs the user process,
// which closes its end. Reading it is all libcontainer's Exec does to
// start a container; the shim does it itself for the built-in runtime, so
// that a start costs no process.
const execFifo = "exec.fifo"

// fifoStartCheck is how often a start that waits for the init checks that
// the init still lives.
const fifoStartCheck = 100 * time.Millisecond

// startByFifo starts the created container whose state directory is dir
// and whose init is pid, as libcontainer's Exec does: read the FIFO to its
// end (the init's byte, then the end of file when it execs), then remove
// it, which marks the container as running. The wait is through the Go
// runtime's poller: no thread blocks in it.
func startByFifo(dir string, pid int) error {
	path := filepath.Join(dir, execFifo)
	// Non-blocking: the open does not wait for the init to be there.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("cannot start an already running container")
		}
		return fmt.Errorf("exec fifo: %w", err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	got := false
	for {
		f.SetReadDeadline(time.Now().Add(fifoStartCheck))
		var rerr error
		done := false
		err := rc.Read(func(fd uintptr) bool {
			var buf [16]byte
			for {
				n, err := unix.Read(int(fd), buf[:])
				switch {
				case n > 0:
					got = true
					continue
				case err == unix.EINTR:
					continue
				case err == unix.EAGAIN:
					return false // the init has not written or exec'd yet
				case err != nil:
					rerr, done = err, true
					return true
				}
				// End of file: the init exec'd. Before its byte, no
				// writer has come yet: wait for it.
				done = got
				return got
			}
		})
		if done {
			if rerr != nil {
				return fmt.Errorf("exec fifo: %w", rerr)
			}
			break
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("exec fifo: %w", err)
		}
		if !alive(pid) {
			return errors.New("container process is already dead")
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
