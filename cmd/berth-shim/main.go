// Command berth-shim is the per-pod monitor process of berth. berthd starts
// one per pod (oci/shim.Launch), detached: its own session and cgroups, its
// own log. The shim creates the pod's containers with libcontainer in its
// own process, so it is their parent: it owns their stdio and writes their
// CRI logs, reaps them and records their exit before reporting it. berthd
// talks to it over <dir>/shim.sock and may restart, or be killed, at any
// time without disturbing the containers.
//
// Signals: SIGTERM, SIGINT and SIGHUP are logged and otherwise ignored, so
// that an operator's or an init system's broad kill of berthd does not orphan
// the pod's containers. The shim exits on the Shutdown call (only when no
// container is left) or on SIGKILL; after SIGKILL its containers run on,
// unmonitored, and berthd reports them from their last records.
//
// The same binary is libcontainer's "init": every container process starts
// as "berth-shim init", which joins the namespaces (nsenter, C code that runs
// before the Go runtime) and sets the container up. With --runtime, an
// external OCI runtime binary (runc, crun) creates the pod's containers
// instead; the shim still owns their stdio and, as a child subreaper, reaps
// their init (runtime_external.go).
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

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	// Runs before the Go runtime in "init" to join the container's
	// namespaces.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	// Registers the device cgroup rule writer; without it libcontainer
	// refuses every container ("cgroup manager is not configured to set
	// device rules").
	_ "github.com/opencontainers/cgroups/devices"

	"github.com/berth-runtime/berth/oci/shim/api"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// libcontainer re-executes this binary as a container's init; this
		// does not return.
		libcontainer.Init()
	}
}

func main() {
	pod := flag.String("pod", "", "ID of the pod this shim serves")
	dir := flag.String("dir", "", "the shim's state directory (absolute); the socket is DIR/"+api.SocketName)
	logPath := flag.String("log", "", "file the shim's own messages are appended to (default: stderr)")
	cgroup := flag.String("cgroup", "", "absolute cgroup path the shim moves itself into on every hierarchy")
	readyFD := flag.Int("ready-fd", -1, "descriptor to write one byte to, then close, once the socket accepts calls")
	runtimePath := flag.String("runtime", "", "absolute path of an OCI runtime binary with runc's command line (runc, crun) to run the pod's containers with; empty: libcontainer in this process")
	runtimeRoot := flag.String("runtime-root", "", "the runtime binary's state directory (its --root); empty: DIR/"+api.RuntimeRootDir)
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
	if err := run(*pod, *dir, *cgroup, *readyFD, *runtimePath, *runtimeRoot); err != nil {
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

func run(pod, dir, cgroupPath string, readyFD int, runtimePath, runtimeRoot string) error {
	if pod == "" {
		return errors.New("--pod is required")
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("--dir %q is not an absolute path", dir)
	}
	if cgroupPath != "" && !filepath.IsAbs(cgroupPath) {
		return fmt.Errorf("--cgroup %q is not an absolute path", cgroupPath)
	}
	if runtimePath != "" && !filepath.IsAbs(runtimePath) {
		return fmt.Errorf("--runtime %q is not an absolute path", runtimePath)
	}
	if runtimeRoot != "" && (runtimePath == "" || !filepath.IsAbs(runtimeRoot)) {
		return fmt.Errorf("--runtime-root %q needs --runtime and an absolute path", runtimeRoot)
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
	var cg cgroups.Manager
	if cgroupPath != "" {
		m, err := joinCgroup(cgroupPath)
		if err != nil {
			return err
		}
		cg = m
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
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
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

	var rt ociRuntime = &lcRuntime{root: filepath.Join(dir, api.LibcontainerDir), reaper: r}
	if runtimePath != "" {
		if runtimeRoot == "" {
			runtimeRoot = filepath.Join(dir, api.RuntimeRootDir)
		}
		rt = &extRuntime{path: runtimePath, root: runtimeRoot, ownRoot: runtimeRoot == filepath.Join(dir, api.RuntimeRootDir),
			dir: dir, reaper: r}
		log.Printf("containers run with %s (state in %s)", runtimePath, runtimeRoot)
	}
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
		if err := leaveCgroup(cg, cgroupPath); err != nil {
			log.Printf("remove own cgroup %s: %v", cgroupPath, err)
		}
	}
	return nil
}
