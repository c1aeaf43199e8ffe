package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
)

// runtimeUnderTest is one running CRI daemon and what the benchmark needs
// to know about it.
type runtimeUnderTest struct {
	name     string // as printed in the table
	version  string
	settings string // pull-relevant settings, for the notes under the table
	dir      string // everything of this daemon lives below
	stateDir string // runtime state (shim sockets, bundles, pods)
	socket   string // the CRI socket
	logPath  string

	cmd    *exec.Cmd
	exited chan struct{}

	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient

	// leftovers lists what of an image's content is still on disk after
	// it was removed; the next pull only downloads again once it is empty.
	leftovers func() ([]string, error)
	// storeDirs hold the runtime's image content, measured after a pull.
	storeDirs []string
}

// start runs the daemon with its output in logPath, in a process group of
// its own so a Ctrl-C at the terminal reaches only the benchmark, which
// stops the daemon in order. Pdeathsig covers the benchmark itself being
// killed: the daemon must not outlive it.
func (r *runtimeUnderTest) start(ctx context.Context, bin string, args []string, env []string, socket string) error {
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.Dir = r.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	r.cmd = cmd
	r.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.exited) }()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-r.exited:
			return fmt.Errorf("%s exited at start (%v):\n%s", r.name, cmd.ProcessState, r.logTail(4096))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if _, err := os.Stat(socket); err == nil && r.connect(ctx, socket) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer CRI Version on %s within %s:\n%s", r.name, socket, startTimeout, r.logTail(4096))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *runtimeUnderTest) connect(ctx context.Context, socket string) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	if _, err := rt.Version(vctx, &runtimeapi.VersionRequest{}); err != nil {
		conn.Close()
		return err
	}
	r.conn, r.rt, r.img = conn, rt, runtimeapi.NewImageServiceClient(conn)
	return nil
}

func (r *runtimeUnderTest) pid() int {
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// stop sends SIGTERM, and SIGKILL to the same PID if the daemon is still
// running stopTimeout later. Only the process this benchmark started is
// signalled.
func (r *runtimeUnderTest) stop() error {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	if r.cmd == nil || r.cmd.Process == nil {
		return nil
	}
	defer func() { r.cmd = nil }()
	select {
	case <-r.exited:
		return nil
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-r.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", r.name, stopTimeout)
}

// finish stops the daemon and keeps its log when asked to.
func (r *runtimeUnderTest) finish(logDir string) error {
	err := r.stop()
	if logDir != "" {
		if cerr := copyFile(r.logPath, filepath.Join(logDir, r.name+".log")); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

func (r *runtimeUnderTest) logTail(n int64) string {
	f, err := os.Open(r.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// envPath is the PATH of both daemons.
const envPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cleanEnv is the environment of both daemons: no proxy settings that
// could send a pull elsewhere, and temp files under the benchmark's dir.
func cleanEnv(tmp string) []string {
	return []string{
		"PATH=" + envPath,
		"HOME=" + tmp,
		"TMPDIR=" + tmp,
		"NO_PROXY=*",
	}
}
