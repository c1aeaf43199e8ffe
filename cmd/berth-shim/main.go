// Command berth-shim is the per-pod monitor process of berth. berthd starts
// one per pod (oci/shim.Launch), detached: its own session and cgroups, its
// own log. The shim creates the pod's containers with an OCI runtime binary
// with runc's command line: berth-runtime (libcontainer) by default, or the
// one a runtime handler names (runc, crun). The binary exits after each
// command and the shim, a child subreaper, becomes the parent of the
// containers' processes: it owns their stdio and writes their CRI logs,
// reaps them and records their exit before reporting it
// (runtime_external.go). The shim never runs libcontainer itself, so that
// a process that lives as long as its pod holds none of its memory. berthd
// talks to it over <dir>/shim.sock and may restart, or be killed, at any
// time without disturbing the containers.
//
// Signals: SIGTERM, SIGINT and SIGHUP are logged and otherwise ignored, so
// that an operator's or an init system's broad kill of berthd does not orphan
// the pod's containers. The shim exits on the Shutdown call (only when no
// container is left) or on SIGKILL; after SIGKILL its containers run on,
// unmonitored, and berthd reports them from their last records.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

func main() {
	pod := flag.String("pod", "", "ID of the pod this shim serves")
	dir := flag.String("dir", "", "the shim's state directory (absolute); the socket is DIR/"+api.SocketName)
	logPath := flag.String("log", "", "file the shim's own messages are appended to (default: stderr)")
	cgroup := flag.String("cgroup", "", "absolute cgroup path the shim moves itself into on every hierarchy")
	readyFD := flag.Int("ready-fd", -1, "descriptor to write one byte to, then close, once the socket accepts calls")
	runtimePath := flag.String("runtime", "", "absolute path of an OCI runtime binary with runc's command line (runc, crun) to run the pod's containers with; empty: the built-in runtime")
	runtimeRoot := flag.String("runtime-root", "", "the runtime binary's state directory (its --root); empty: DIR/"+api.RuntimeRootDir)
	builtin := flag.String("builtin-runtime", "", "absolute path of the built-in runtime, "+builtinRuntime+" (libcontainer; its state in DIR/"+api.LibcontainerDir+"); empty: beside this binary")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "berth-shim: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := setupStdio(*logPath); err != nil {
		fmt.Fprintf(os.Stderr, "berth-shim: %v\n", err)
		os.Exit(1)
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix(fmt.Sprintf("berth-shim[%d] pod %s: ", os.Getpid(), *pod))
	if err := run(*pod, *dir, *cgroup, *readyFD, runtimeOpts{*runtimePath, *runtimeRoot, *builtin}); err != nil {
		log.Printf("fatal: %v", err)
		os.Exit(1)
	}
	log.Printf("shut down")
	os.Exit(0)
}

// setupStdio points stdin at /dev/null and stdout and stderr at the log, so
// that nothing of the shim stays connected to whoever started it (a closed
// terminal or pipe would otherwise kill it with SIGPIPE or EIO).
func setupStdio(logPath string) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	if err := unix.Dup3(int(null.Fd()), 0, 0); err != nil {
		return os.NewSyscallError("dup3", err)
	}
	if logPath == "" {
		return nil
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return os.NewSyscallError("dup3", err)
		}
	}
	return nil
}

func run(pod, dir, cgroupPath string, readyFD int, ro runtimeOpts) error {
	if pod == "" {
		return errors.New("--pod is required")
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("--dir %q is not an absolute path", dir)
	}
	if cgroupPath != "" && !filepath.IsAbs(cgroupPath) {
		return fmt.Errorf("--cgroup %q is not an absolute path", cgroupPath)
	}
	rt, err := ro.runtime(dir)
	if err != nil {
		return err
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	// Notify, not Ignore: an ignored signal stays ignored across exec, and
	// every container process is exec'd from this one.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	go func() {
		for s := range sigs {
			log.Printf("ignoring %v: the shim exits on Shutdown or SIGKILL", s)
		}
	}()

	// Leave berthd's cgroups before anything else, so that no container
	// process is ever forked from there.
	var cg *ownCgroup
	if cgroupPath != "" {
		if cg, err = joinCgroup(cgroupPath); err != nil {
			if cg != nil {
				cg.leave()
			}
			return err
		}
	}

	r, err := newReaper()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	sock := filepath.Join(dir, api.SocketName)
	addr, release, err := api.SocketAddr(dir)
	if err != nil {
		return err
	}
	if conn, err := net.DialTimeout("unix", addr, time.Second); err == nil {
		conn.Close()
		release()
		return fmt.Errorf("another shim already answers on %s", sock)
	}
	os.Remove(sock)
	l, err := listenUnix(addr)
	release()
	if err != nil {
		return err
	}
	// The address may be a /proc/self/fd path that is gone by then; the
	// socket file is removed by its real path instead.
	l.SetUnlinkOnClose(false)
	defer os.Remove(sock)
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return err
	}

	rt.reaper = r
	log.Printf("containers run with %s (state in %s)", rt.path, rt.root)
	s := newServer(pod, dir, r, rt)
	done := make(chan struct{})
	var once sync.Once
	rs := &rpcServer{
		methods: s.methods(),
		session: s.serveSession,
		after: map[string]func(){
			api.MethodShutdown: func() { once.Do(func() { close(done) }) },
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- rs.serve(l) }()
	log.Printf("serving %s", sock)
	if readyFD >= 0 {
		// The launcher blocks on this pipe instead of polling for the
		// socket: it learns the shim is ready the moment it is.
		ready := os.NewFile(uintptr(readyFD), "ready")
		ready.Write([]byte{1})
		ready.Close()
	}

	select {
	case <-done:
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	l.Close() // also removes the socket file
	s.rt.close()
	os.Remove(filepath.Join(dir, api.ContainersDir))
	if cg != nil {
		if err := cg.leave(); err != nil {
			log.Printf("remove own cgroup %s: %v", cgroupPath, err)
		}
	}
	return nil
}

// builtinRuntime is the runtime binary of the built-in handler, installed
// beside the shim.
const builtinRuntime = "berth-runtime"

// runtimeOpts are the flags that choose the pod's runtime binary.
type runtimeOpts struct {
	path, root string // --runtime, --runtime-root
	builtin    string // --builtin-runtime
}

// runtime checks the flags and fills in the defaults: the built-in runtime
// beside this binary with its state in DIR/libcontainer, or the named
// binary with its state in DIR/runtime unless a root is given.
func (o runtimeOpts) runtime(dir string) (*extRuntime, error) {
	switch {
	case o.path != "" && !filepath.IsAbs(o.path):
		return nil, fmt.Errorf("--runtime %q is not an absolute path", o.path)
	case o.root != "" && (o.path == "" || !filepath.IsAbs(o.root)):
		return nil, fmt.Errorf("--runtime-root %q needs --runtime and an absolute path", o.root)
	case o.builtin != "" && (o.path != "" || !filepath.IsAbs(o.builtin)):
		return nil, fmt.Errorf("--builtin-runtime %q is not an absolute path or comes with --runtime", o.builtin)
	}
	if o.path != "" {
		rt := &extRuntime{path: o.path, root: o.root, dir: dir}
		if rt.root == "" {
			rt.root, rt.ownRoot = filepath.Join(dir, api.RuntimeRootDir), true
		}
		return rt, nil
	}
	if o.builtin == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.builtin = filepath.Join(filepath.Dir(self), builtinRuntime)
	}
	return &extRuntime{path: o.builtin, root: filepath.Join(dir, api.LibcontainerDir), ownRoot: true, dir: dir, fifoStart: true}, nil
}
