package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// runtimeTimeout bounds one command of the runtime binary (a create runs
// the spec's hooks).
const runtimeTimeout = 2 * time.Minute

// extRuntime runs containers with an OCI runtime binary that speaks runc's
// command line, the way containerd's runc shim does. The binary exits after
// each command: the container's init and exec'd processes lose their parent
// and, the shim being a child subreaper, become the shim's children; it
// reaps them by PID (pid files) and so learns their exit codes. Their stdio
// are the binary's own, which the shim sets up to be its pipes.
type extRuntime struct {
	path    string // the binary
	root    string // its --root
	ownRoot bool   // root is the shim's own (removed when empty at exit)
	dir     string // the shim's directory: per-container files go in its containers/<id>
	reaper  *reaper
	// fifoStart: the binary is berth-runtime, whose containers the shim
	// starts itself (startByFifo).
	fifoStart bool
}

func (r *extRuntime) close() {
	if r.ownRoot {
		os.Remove(r.root)
	}
}

// extContainer is one container of the runtime binary.
type extContainer struct {
	rt      *extRuntime
	id      string
	files   string // the runtime's log, pid files, exec's process files
	args    runtimeArgs
	initPid int
	paths   map[string]string
	reaped  atomic.Bool // init was waited for: its PID may be another process's now
}

func (r *extRuntime) create(id, bundle string, spec *ctrSpec, pio procIO) (_ ctrHandle, _ *os.File, retErr error) {
	files := filepath.Join(r.dir, api.ContainersDir, id)
	if err := os.MkdirAll(files, 0o700); err != nil {
		return nil, nil, err
	}
	h := &extContainer{rt: r, id: id, files: files, args: runtimeArgs{
		root:    r.root,
		log:     filepath.Join(files, "runtime.log"),
		systemd: systemdCgroupPath(spec.Linux.CgroupsPath),
	}}
	pidFile := filepath.Join(files, "init.pid")
	defer func() {
		if retErr != nil {
			// The record directory has nothing else yet: the state is
			// written only after create.
			os.Remove(pidFile)
			os.Remove(h.args.log)
			os.Remove(files)
		}
	}()
	if _, err := os.Stat(filepath.Join(r.root, id)); err == nil {
		// Left behind by a shim that died: removed unless it still runs.
		if err := h.run(h.args.delete(id, false), nil); err != nil {
			log.Printf("container %s: remove leftover: %v", id, err)
		}
	}

	var cs *consoleSocket
	if pio.tty {
		var err error
		if cs, err = newConsoleSocket(); err != nil {
			return nil, nil, err
		}
		defer cs.close()
		pio = procIO{} // the pty is the init's stdio
	}
	if err := h.run(h.args.create(id, bundle, pidFile, cs.path()), &pio); err != nil {
		return nil, nil, fmt.Errorf("create container %s: %w", id, err)
	}
	// From here on a failure deletes the container again.
	defer func() {
		if retErr != nil {
			if err := h.run(h.args.delete(id, true), nil); err != nil {
				log.Printf("container %s: delete after failed create: %v", id, err)
			}
			if h.initPid > 0 {
				waitPid(h.initPid)
				r.reaper.untrack(h.initPid)
			}
		}
	}()
	pid, err := readPidFile(pidFile)
	if err != nil {
		return nil, nil, fmt.Errorf("create container %s: %w", id, err)
	}
	// The runtime exited: its child, the init, is the shim's now.
	r.reaper.track(pid)
	h.initPid = pid
	var master *os.File
	if cs != nil {
		if master, err = cs.receive(); err != nil {
			return nil, nil, fmt.Errorf("receive the console of %s: %w", id, err)
		}
	}
	if h.paths, err = cgroupPathsOf(pid); err != nil {
		log.Printf("container %s: cgroup paths: %v", id, err)
	}
	return h, master, nil
}

// run runs the runtime binary with args. pio, when given, are its stdio,
// which the processes it starts inherit; without it the output is kept for
// the error. A failure quotes the runtime's last logged error.
func (h *extContainer) run(args []string, pio *procIO) error {
	ctx, cancel := context.WithTimeout(context.Background(), runtimeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.rt.path, args...)
	cmd.Dir = "/"
	var out bytes.Buffer
	if pio != nil {
		// Files only: a buffer would be a pipe the container inherits.
		if pio.stdin != nil {
			cmd.Stdin = pio.stdin
		}
		if pio.stdout != nil {
			cmd.Stdout = pio.stdout
		}
		if pio.stderr != nil {
			cmd.Stderr = pio.stderr
		}
	} else {
		cmd.Stdout, cmd.Stderr = &out, &out
	}
	var logStart int64
	if fi, err := os.Stat(h.args.log); err == nil {
		logStart = fi.Size()
	}
	err := cmd.Start()
	if err == nil {
		// The command runs for a while (a create tens of milliseconds):
		// waited for through the poller, the shim's one thread stays
		// free and no other is made for the wait.
		awaitExit(cmd.Process.Pid)
		err = cmd.Wait()
	}
	if err == nil {
		return nil
	}
	msg := lastLogError(readFrom(h.args.log, logStart))
	if msg == "" {
		msg = strings.TrimSpace(out.String())
	}
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("%s %s: %s", filepath.Base(h.rt.path), args[len(h.args.global())], msg)
}

// readFrom returns what a file holds from off on (at most 64 KiB).
func readFrom(file string, off int64) []byte {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(io.NewSectionReader(f, off, 1<<62), 64<<10))
	return b
}

func readPidFile(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a PID", file, b)
	}
	return pid, nil
}

// waitPid reaps the shim's child pid. A process that is not the shim's
// child (a runtime that did not leave it to its subreaper) is watched
// until it is gone, its exit status unknown.
func waitPid(pid int) (int32, string, error) {
	awaitExit(pid)
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			code, msg := waitStatus(syscall.WaitStatus(ws))
			return code, msg, nil
		}
		if err == unix.ECHILD {
			for alive(pid) {
				time.Sleep(100 * time.Millisecond)
			}
		}
		return 255, fmt.Sprintf("exit status unknown: wait for pid %d: %v", pid, err), err
	}
}

// awaitExit waits until pid has exited, through a pidfd polled by the Go
// runtime's poller: a wait4 blocking for a container's whole life would
// keep an OS thread (and its stacks) per container. It returns early,
// leaving the wait to wait4, when the pidfd cannot be had.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		// Readable once the process exited; false waits for that.
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		return err != nil && err != unix.EINTR || n > 0
	})
}

// alive tells whether pid is a process that has not exited.
func alive(pid int) bool {
	st, _, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X'
}

func (h *extContainer) pid() int { return h.initPid }

func (h *extContainer) start() error {
	if h.rt.fifoStart {
		if err := startByFifo(filepath.Join(h.rt.root, h.id), h.initPid); err != nil {
			return fmt.Errorf("start container %s: %w", h.id, err)
		}
		return nil
	}
	if err := h.run(h.args.start(h.id), nil); err != nil {
		return fmt.Errorf("start container %s: %w", h.id, err)
	}
	return nil
}

func (h *extContainer) wait() (int32, string, error) {
	code, msg, err := waitPid(h.initPid)
	h.reaped.Store(true)
	h.rt.reaper.untrack(h.initPid)
	return code, msg, err
}

// running tells whether the container's init has not exited.
func (h *extContainer) running() bool { return !h.reaped.Load() && alive(h.initPid) }

func (h *extContainer) signal(sig unix.Signal, all bool) error {
	if err := h.run(h.args.kill(h.id, sig, all), nil); err != nil {
		if !h.running() {
			return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s is not running", h.id))
		}
		return fmt.Errorf("signal container %s: %w", h.id, err)
	}
	return nil
}

// processes reads the container's cgroup: the runtime's "ps" would cost a
// process start for the same list.
func (h *extContainer) processes() ([]int, error) {
	for _, c := range []string{"pids", "memory", "cpu", ""} {
		if p := h.paths[c]; p != "" {
			return cgroupProcs(p)
		}
	}
	return nil, fmt.Errorf("container %s: no cgroup known", h.id)
}

func (h *extContainer) cgroupPaths() map[string]string { return h.paths }

// extExec is a process the runtime exec'd and left to the shim.
type extExec struct {
	p      int
	reaper *reaper
}

func (e *extExec) pid() int                     { return e.p }
func (e *extExec) signal(sig unix.Signal) error { return unix.Kill(e.p, sig) }
func (e *extExec) wait() (int32, string, error) {
	code, msg, err := waitPid(e.p)
	e.reaper.untrack(e.p)
	return code, msg, err
}

func (h *extContainer) exec(process []byte, pio procIO) (execProc, *os.File, error) {
	tag := randomTag()
	procFile := filepath.Join(h.files, "exec-"+tag+".json")
	pidFile := filepath.Join(h.files, "exec-"+tag+".pid")
	defer os.Remove(procFile)
	defer os.Remove(pidFile)
	if err := os.WriteFile(procFile, process, 0o600); err != nil {
		return nil, nil, err
	}
	var cs *consoleSocket
	var err error
	if pio.tty {
		if cs, err = newConsoleSocket(); err != nil {
			return nil, nil, err
		}
		defer cs.close()
		pio = procIO{}
	}
	if err := h.run(h.args.exec(h.id, procFile, pidFile, cs.path()), &pio); err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", h.id, err)
	}
	pid, err := readPidFile(pidFile)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", h.id, err)
	}
	h.rt.reaper.track(pid)
	e := &extExec{p: pid, reaper: h.rt.reaper}
	var master *os.File
	if cs != nil {
		if master, err = cs.receive(); err != nil {
			e.signal(unix.SIGKILL)
			e.wait()
			return nil, nil, fmt.Errorf("exec in %s: receive the pty: %w", h.id, err)
		}
	}
	return e, master, nil
}

func (h *extContainer) update(r *specs.LinuxResources) error {
	b, err := json.Marshal(r)
	if err != nil {
		return api.Errorf(api.ErrInvalid, "resources: "+err.Error())
	}
	file := filepath.Join(h.files, "resources-"+randomTag()+".json")
	defer os.Remove(file)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return err
	}
	if err := h.run(h.args.update(h.id, file), nil); err != nil {
		if !h.running() {
			return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited", h.id))
		}
		return err
	}
	return nil
}

func (h *extContainer) destroy() error {
	err := h.run(h.args.delete(h.id, true), nil)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(h.rt.root, h.id)); errors.Is(serr, os.ErrNotExist) {
			return nil // already gone
		}
		return fmt.Errorf("delete container %s: %w", h.id, err)
	}
	return nil
}

func randomTag() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
