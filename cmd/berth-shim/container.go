package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
	"github.com/berth-runtime/berth/pkg/crilog"
)

const (
	// ioDrainTimeout bounds how long the exit of a container or exec waits
	// for its output to end after the process itself exited.
	ioDrainTimeout = 2 * time.Second
	// killTimeout bounds how long Delete waits for a killed container.
	killTimeout = 30 * time.Second
	// consoleTimeout bounds the wait for the pty master of a new process.
	consoleTimeout = 10 * time.Second
)

// container is one container of the pod, from Create to Delete.
type container struct {
	id   string
	shim *server

	h      ctrHandle // from the pod's runtime, once created
	spec   *ctrSpec
	bundle string
	log    *crilog.Writer // nil without a log path
	stdin  io.Closer      // the stdin pipe or the pty master, kept for attach
	io     copiers
	cgroup map[string]string // the container's cgroup paths, for the OOM count

	// streams: attach clients fed from the output, exec sessions (session.go)
	streams streams

	// op serialises the calls that change the container (Create, Start,
	// Delete); State, Wait and Signal do not take it.
	op      sync.Mutex
	deleted bool

	// mu guards st. st changes only after the new state is on disk, so no
	// answer ever reports a state that a restart would not find.
	mu     sync.Mutex
	st     api.ContainerState
	exited chan struct{} // closed once the exit is recorded
}

func (c *container) state() api.ContainerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// record writes st (see api.WriteState), then makes it the container's state.
func (c *container) record(update func(st *api.ContainerState)) api.ContainerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	update(&st)
	if err := api.WriteState(c.shim.dir, st); err != nil {
		// The answer still tells the truth; only a reader of the file after
		// the shim's death could be misled, so say it loudly.
		log.Printf("container %s: %v", c.id, err)
	}
	c.st = st
	return st
}

// systemdCgroupPath tells a "slice:prefix:name" cgroupsPath (systemd
// driver) from a path (cgroupfs driver).
func systemdCgroupPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2
}

// create builds the container and starts its init, which then waits for
// Start. On error everything made is undone.
func (c *container) create(req *api.CreateRequest) (retErr error) {
	spec, err := loadSpec(req.Bundle)
	if err != nil {
		return err
	}
	if spec.Process.Terminal != req.Tty {
		return api.Errorf(api.ErrInvalid, fmt.Sprintf("tty: %v, but the spec's process.terminal is %v", req.Tty, spec.Process.Terminal))
	}
	if err := checkPrivileges(spec.Process); err != nil {
		return err
	}
	c.spec = spec
	c.bundle = req.Bundle

	var closers []io.Closer
	defer func() {
		if retErr != nil {
			for _, f := range closers {
				f.Close()
			}
		}
	}()

	var stdout, stderr io.WriteCloser = discard{}, discard{}
	if req.LogPath != "" {
		max := req.MaxLogLineSize
		if max == 0 {
			max = api.DefaultMaxLogLineSize
		}
		w, err := crilog.Open(req.LogPath, max)
		if err != nil {
			return api.Errorf(api.ErrInvalid, "log_path: "+err.Error())
		}
		c.log = w
		closers = append(closers, w)
		stdout, stderr = w.Stream("stdout"), w.Stream("stderr")
	}

	stdout, stderr = c.streams.wrap(stdout, stderr)
	c.streams.stdin, c.streams.stdinOnce = req.Stdin, req.StdinOnce

	pio := procIO{tty: req.Tty}
	var after []io.Closer // the child's ends, closed once it has them
	if !req.Tty {
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			return err
		}
		pio.stdout, pio.stderr = outW, errW
		after = append(after, outW, errW)
		closers = append(closers, outR, errR)
		if req.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				for _, f := range after {
					f.Close()
				}
				return err
			}
			pio.stdin = inR
			after = append(after, inR)
			closers = append(closers, inW)
			c.stdin = inW
		}
		c.io.add(outR, stdout)
		c.io.add(errR, stderr)
	}

	h, master, err := c.shim.rt.create(c.id, req.Bundle, spec, pio)
	for _, f := range after {
		f.Close()
	}
	if err != nil {
		return err
	}
	if master != nil {
		m, err := logConsole(master)
		if err != nil {
			h.signal(unix.SIGKILL, true)
			h.wait()
			if derr := h.destroy(); derr != nil {
				log.Printf("container %s: destroy after failed create: %v", c.id, derr)
			}
			return fmt.Errorf("console of %s: %w", c.id, err)
		}
		closers = append(closers, m)
		c.stdin = m
		c.io.add(m, stdout)
		stderr.Close()
	}
	c.h = h
	c.cgroup = h.cgroupPaths()
	pid := h.pid()
	c.record(func(st *api.ContainerState) {
		*st = api.ContainerState{ID: c.id, Status: api.StatusCreated, Pid: pid, CreatedAt: time.Now()}
	})
	go c.waitExit()
	return nil
}

// logConsole makes the pty master a runtime handed over fit for the log:
// no "\r\n" for "\n", and a pollable descriptor (so that closing it ends
// a read). It takes f.
func logConsole(f *os.File) (*os.File, error) {
	defer f.Close()
	if err := console.ClearONLCR(f.Fd()); err != nil {
		return nil, err
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pty-master"), nil
}

// waitExit reaps the container's init, lets its output drain, and records
// the exit (with the OOM verdict) before anyone is told.
func (c *container) waitExit() {
	code, msg, _ := c.h.wait()
	finished := time.Now()
	if !c.io.wait(ioDrainTimeout) {
		log.Printf("container %s: output still open %v after exit; closed it", c.id, ioDrainTimeout)
	}
	c.streams.end()
	if c.stdin != nil {
		c.stdin.Close()
	}
	if c.log != nil {
		if n := c.log.Dropped(); n > 0 {
			log.Printf("container %s: %d log records lost: %v", c.id, n, c.log.Err())
		}
		c.log.Close()
	}
	oom, _ := oomKills(c.cgroup)
	st := c.record(func(st *api.ContainerState) {
		st.Status = api.StatusStopped
		st.FinishedAt = finished
		st.ExitCode = code
		st.OOMKilled = oom > 0
		st.Message = msg
	})
	close(c.exited)
	log.Printf("container %s exited: code %d, OOM-killed %v", c.id, st.ExitCode, st.OOMKilled)
}

// waitStatus turns a wait status into a CRI exit code: the status, or
// 128+signal for a process killed by a signal.
func waitStatus(ws syscall.WaitStatus) (int32, string) {
	if ws.Signaled() {
		return 128 + int32(ws.Signal()), "killed by signal " + unix.SignalName(ws.Signal())
	}
	return int32(ws.ExitStatus()), ""
}

// start lets init exec the user process.
func (c *container) start() error {
	if st := c.state(); st.Status != api.StatusCreated {
		return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s is %s, not created", c.id, st.Status))
	}
	if err := c.h.start(); err != nil {
		return err
	}
	now := time.Now()
	c.record(func(st *api.ContainerState) {
		switch st.Status {
		case api.StatusCreated:
			st.Status = api.StatusRunning
			st.StartedAt = now
		case api.StatusStopped:
			// It ran and exited before the start was recorded.
			st.StartedAt = now
			if st.FinishedAt.Before(now) {
				st.StartedAt = st.FinishedAt
			}
		}
	})
	return nil
}

// signal sends sig to init, or with all to every process of the container
// (init first: SIGKILL to the init of a PID namespace ends all of it).
func (c *container) signal(sig unix.Signal, all bool) error {
	select {
	case <-c.exited:
		return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited", c.id))
	default:
	}
	return c.h.signal(sig, all)
}

// remove kills the container if needed and destroys it.
func (c *container) remove(force bool) error {
	select {
	case <-c.exited:
	default:
		if st := c.state(); st.Status == api.StatusRunning && !force {
			return api.Errorf(api.ErrFailedPrecondition, fmt.Sprintf("container %s is running; stop it first or force", c.id))
		}
		if err := c.signal(unix.SIGKILL, true); err != nil && !errors.Is(err, api.ErrNotRunning) {
			return err
		}
		select {
		case <-c.exited:
		case <-time.After(killTimeout):
			return fmt.Errorf("container %s did not exit %v after SIGKILL", c.id, killTimeout)
		}
	}
	if err := c.h.destroy(); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(c.shim.dir, api.ContainersDir, c.id)); err != nil {
		log.Printf("container %s: remove record: %v", c.id, err)
	}
	c.deleted = true
	return nil
}
