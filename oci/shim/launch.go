package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LaunchOptions says how to start a shim for one pod.
type LaunchOptions struct {
	// Binary is the path of berth-shim.
	Binary string
	// PodID is the pod the shim serves (for its messages and Info).
	PodID string
	// Dir is the shim's own state directory, e.g. <state_dir>/shims/<pod id>.
	// It is created with mode 0700; the control socket is Dir/shim.sock.
	Dir string
	// CgroupPath is an absolute cgroup path (relative to each hierarchy's
	// root, e.g. "/berth/shims/<pod id>"). The shim moves itself there, on
	// every cgroup v1 hierarchy and the unified one, before it answers, so
	// it never stays in the caller's cgroups (its memory is then accounted
	// on its own).
	CgroupPath string
	// GOMAXPROCS is the shim's Go runtime parallelism; 0 means 1. A monitor
	// mostly waits on pipes and its socket, and fewer runtime threads and
	// per-P caches in every pod's monitor add up on a node.
	GOMAXPROCS int
	// LogPath receives the shim's own messages (appended). Empty means
	// Dir/shim.log.
	LogPath string
	// Runtime is the absolute path of an OCI runtime binary with runc's
	// command line (runc, crun) that the shim drives for all of the pod's
	// containers. Empty means the built-in runtime, BuiltinRuntime.
	Runtime string
	// RuntimeRoot is that binary's state directory (its --root); empty
	// means Dir/runtime. Only with Runtime.
	RuntimeRoot string
	// BuiltinRuntime is the absolute path of berth-runtime (libcontainer),
	// the runtime without Runtime; empty means berth-runtime beside the
	// shim's binary. Its state is in Dir/libcontainer.
	BuiltinRuntime string
}

// DefaultLaunchTimeout bounds Launch when its context has no deadline.
const DefaultLaunchTimeout = 30 * time.Second

// Launch starts a detached berth-shim for a pod and waits until its socket
// answers. The shim gets its own session (no signal to berthd's process
// group or terminal reaches it), /dev/null as stdin and the log file as
// stdout and stderr, and a minimal environment; it outlives berthd. If the
// shim does not come up, it is killed and the error quotes its log.
//
// Launch reaps the shim when it exits while the caller still runs; after a
// restart of the caller, the shim is reparented like any orphan.
func Launch(ctx context.Context, o LaunchOptions) (*Client, int, error) {
	if o.Binary == "" {
		return nil, 0, errorf(ErrInvalid, "binary: must not be empty")
	}
	if o.PodID == "" || strings.ContainsAny(o.PodID, "/\x00\n") {
		return nil, 0, errorf(ErrInvalid, fmt.Sprintf("pod_id: %q is empty or has '/', NUL or newline", o.PodID))
	}
	if !filepath.IsAbs(o.Dir) {
		return nil, 0, errorf(ErrInvalid, fmt.Sprintf("dir: %q is not an absolute path", o.Dir))
	}
	if !filepath.IsAbs(o.CgroupPath) || filepath.Clean(o.CgroupPath) != o.CgroupPath || o.CgroupPath == "/" {
		return nil, 0, errorf(ErrInvalid, fmt.Sprintf("cgroup_path: %q is not a clean absolute cgroup path below the root", o.CgroupPath))
	}
	if o.Runtime != "" && !filepath.IsAbs(o.Runtime) {
		return nil, 0, errorf(ErrInvalid, fmt.Sprintf("runtime: %q is not an absolute path", o.Runtime))
	}
	if o.BuiltinRuntime != "" && (o.Runtime != "" || !filepath.IsAbs(o.BuiltinRuntime)) {
		return nil, 0, errorf(ErrInvalid, fmt.Sprintf("builtin_runtime: %q is not an absolute path or comes with a runtime", o.BuiltinRuntime))
	}
	if o.RuntimeRoot != "" && (o.Runtime == "" || !filepath.IsAbs(o.RuntimeRoot)) {
		return nil, 0, errorf(ErrInvalid, fmt.Sprintf("runtime_root: %q needs a runtime and an absolute path", o.RuntimeRoot))
	}
	if o.LogPath == "" {
		o.LogPath = filepath.Join(o.Dir, "shim.log")
	} else if !filepath.IsAbs(o.LogPath) {
		return nil, 0, errorf(ErrInvalid, fmt.Sprintf("log_path: %q is not an absolute path", o.LogPath))
	}
	sock := filepath.Join(o.Dir, SocketName)
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("shim: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("shim: %w", err)
	}
	if _, err := os.Stat(sock); err == nil {
		if c, err := connect(ctx, o.Dir); err == nil {
			pid := c.Pid()
			c.Close()
			return nil, 0, errorf(ErrExists, fmt.Sprintf("a shim (pid %d) already serves %s", pid, o.Dir))
		}
		// A stale socket of a dead shim: the new shim replaces it.
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLaunchTimeout)
		defer cancel()
	}
	logf, err := os.OpenFile(o.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("shim: log_path: %w", err)
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)
	// The shim writes a byte on this pipe once its socket accepts calls, so
	// the wait below ends the moment it is ready rather than at a poll.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, 0, fmt.Errorf("shim: %w", err)
	}
	cmd := exec.Command(o.Binary, shimArgs(o)...)
	cmd.Dir = "/"
	cmd.Env = shimEnv(max(o.GOMAXPROCS, 1))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logf.Close()
	readyW.Close()
	if err != nil {
		readyR.Close()
		return nil, 0, fmt.Errorf("shim: start %s: %w", o.Binary, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		var b [1]byte
		if n, _ := readyR.Read(b[:]); n == 1 {
			close(ready)
		}
		readyR.Close()
	}()

	fail := func(err error) (*Client, int, error) {
		cmd.Process.Kill()
		return nil, 0, fmt.Errorf("shim: pod %s: %w%s", o.PodID, err, logTail(o.LogPath, logStart))
	}
	select {
	case <-ready:
	case err := <-exited:
		if err == nil {
			err = errors.New("exited with status 0")
		}
		return nil, 0, fmt.Errorf("shim: pod %s: shim exited before it answered: %v%s", o.PodID, err, logTail(o.LogPath, logStart))
	case <-ctx.Done():
		return fail(fmt.Errorf("shim did not answer: %w", ctx.Err()))
	}
	for delay := time.Duration(0); ; {
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exited with status 0")
			}
			return nil, 0, fmt.Errorf("shim: pod %s: shim exited before it answered: %v%s", o.PodID, err, logTail(o.LogPath, logStart))
		case <-ctx.Done():
			return fail(fmt.Errorf("shim did not answer: %w", ctx.Err()))
		case <-time.After(delay):
		}
		if _, err := os.Stat(sock); err != nil {
			delay = min(max(2*delay, time.Millisecond), 20*time.Millisecond)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := connect(actx, o.Dir)
		cancel()
		if err == nil {
			if c.Pid() != pid {
				c.Close()
				return fail(fmt.Errorf("socket answered by pid %d, not the shim started (%d)", c.Pid(), pid))
			}
			return c, pid, nil
		}
		if !errors.Is(err, ErrShimGone) {
			return fail(err)
		}
		delay = min(max(2*delay, time.Millisecond), 20*time.Millisecond)
	}
}

// shimArgs is the shim's command line (after the binary).
func shimArgs(o LaunchOptions) []string {
	args := []string{"--pod", o.PodID, "--dir", o.Dir, "--log", o.LogPath, "--cgroup", o.CgroupPath, "--ready-fd", "3"}
	if o.BuiltinRuntime != "" {
		args = append(args, "--builtin-runtime", o.BuiltinRuntime)
	}
	if o.Runtime != "" {
		args = append(args, "--runtime", o.Runtime)
		if o.RuntimeRoot != "" {
			args = append(args, "--runtime-root", o.RuntimeRoot)
		}
	}
	return args
}

// shimEnv is the shim's environment: containers get theirs from the spec,
// so the shim needs a PATH (for hooks) and the Go runtime's tuning knobs.
func shimEnv(procs int) []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=" + strconv.Itoa(procs)}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// logTail returns what the shim wrote to its log since off, for an error.
func logTail(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 2048
	st, err := f.Stat()
	if err != nil || st.Size() <= off {
		return ""
	}
	if st.Size()-off > max {
		off = st.Size() - max
	}
	b := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(b, off)
	b = bytes.TrimSpace(b[:n])
	if len(b) == 0 {
		return ""
	}
	return "; shim log: " + string(b)
}
