package shim_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim"
)

// These tests run real containers: root, cgo, libseccomp and a static
// busybox are needed. TestMain builds berth-shim and, beside it, its
// runtime berth-runtime the way the Makefile does.

var (
	shimBin string
	busybox []byte
	skipAll string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv(helperEnv) != "" {
		return launchHelper()
	}
	switch {
	case os.Geteuid() != 0:
		skipAll = "needs root"
	case !cgroupV1Memory():
		skipAll = "needs the cgroup v1 memory controller at /sys/fs/cgroup/memory or cgroup v2"
	}
	var err error
	if busybox, err = os.ReadFile("/bin/busybox"); err != nil && skipAll == "" {
		skipAll = "no static /bin/busybox (apt-get install busybox-static)"
	}
	if skipAll != "" {
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "berth-shim-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	shimBin = filepath.Join(tmp, "berth-shim")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, b := range []struct{ pkg, out, tags, cgo, ldflags string }{
		{"./cmd/berth-shim", shimBin, "netgo osusergo", "0", "-s -w"},
		{"./cmd/berth-runtime", filepath.Join(tmp, "berth-runtime"), "seccomp netgo osusergo", "1", "-s -w -extldflags -static"},
	} {
		build := exec.Command(gobin, "build", "-tags", b.tags, "-ldflags", b.ldflags, "-o", b.out, b.pkg)
		build.Dir = filepath.Join("..", "..")
		build.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	// Shims whose launcher died are reparented here, the way they would be
	// to berthd's supervisor, so that the tests can reap them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func cgroupV1Memory() bool {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

func needRoot(t *testing.T) {
	t.Helper()
	if skipAll != "" {
		t.Skip(skipAll)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testEnv is one pod: a shim, a cgroup subtree for it and its containers,
// and a directory for bundles and logs.
type testEnv struct {
	t      *testing.T
	cgBase string // "/berth-test/<random>"
	work   string // bundles and logs
	dir    string // the shim's directory
	c      *shim.Client
	pid    int
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// newEnv prepares a pod environment without a shim.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	needRoot(t)
	e := &testEnv{t: t, cgBase: "/berth-test/" + randHex(6), work: t.TempDir()}
	// A short directory: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "bs-")
	if err != nil {
		t.Fatal(err)
	}
	e.dir = filepath.Join(dir, "pod")
	t.Cleanup(func() {
		removeCgroups(t, e.cgBase)
		os.RemoveAll(dir)
	})
	return e
}

// launch starts the shim for e; cleanup deletes the containers left, shuts
// the shim down and checks that it went.
func (e *testEnv) launch() *testEnv {
	t := e.t
	t.Helper()
	c, pid, err := shim.Launch(ctx(t), shim.LaunchOptions{
		Binary:     shimBin,
		PodID:      "pod-" + randHex(4),
		Dir:        e.dir,
		CgroupPath: e.cgBase + "/shim",
		LogPath:    filepath.Join(e.work, "shim.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.c, e.pid = c, pid
	t.Cleanup(func() { e.shutdown() })
	return e
}

func (e *testEnv) shutdown() {
	t := e.t
	if e.c == nil {
		return
	}
	cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if list, err := e.c.List(cx); err == nil {
		for _, st := range list {
			if err := e.c.Delete(cx, st.ID, true); err != nil {
				t.Errorf("cleanup: delete %s: %v", st.ID, err)
			}
		}
	}
	if err := e.c.Shutdown(cx); err != nil && !errors.Is(err, shim.ErrShimGone) {
		t.Errorf("cleanup: shutdown: %v", err)
	}
	e.c.Close()
	if !waitGone(e.pid, 10*time.Second) {
		t.Errorf("cleanup: shim %d still there; killing it", e.pid)
		unix.Kill(e.pid, unix.SIGKILL)
		waitGone(e.pid, 5*time.Second)
	}
	if b, err := os.ReadFile(filepath.Join(e.work, "shim.log")); err == nil && testing.Verbose() {
		t.Logf("shim log:\n%s", b)
	}
	e.c = nil
}

// waitGone waits until pid no longer runs; it reaps it if it is a child
// (an orphaned shim reparented to the test).
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		st, ok := procState(pid)
		if !ok || st == 'Z' {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

// bundle writes a bundle with a fresh busybox root filesystem and a spec
// running args; mod adjusts the spec.
func (e *testEnv) bundle(id string, mod func(*specs.Spec), args ...string) string {
	t := e.t
	t.Helper()
	b := filepath.Join(e.work, "bundles", id)
	rootfs := filepath.Join(b, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), busybox, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "echo", "cat", "true", "false", "head", "tail", "tr", "touch", "id", "ls", "ps", "dd", "yes", "wc", "tty", "test", "[", "grep", "printf"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nuser:x:1000:\n"), 0o644)
	spec := testSpec("rootfs", e.cgBase+"/"+id, args...)
	if mod != nil {
		mod(spec)
	}
	j, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), j, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *testEnv) logPath(id string) string {
	d := filepath.Join(e.work, "logs")
	os.MkdirAll(d, 0o755)
	return filepath.Join(d, id+".log")
}

// create makes a container running args, with a log.
func (e *testEnv) create(id string, mod func(*specs.Spec), args ...string) shim.CreateResponse {
	e.t.Helper()
	r, err := e.c.Create(ctx(e.t), shim.CreateRequest{ID: id, Bundle: e.bundle(id, mod, args...), LogPath: e.logPath(id)})
	if err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
	return r
}

func (e *testEnv) run(id string, mod func(*specs.Spec), args ...string) shim.CreateResponse {
	e.t.Helper()
	r := e.create(id, mod, args...)
	if err := e.c.Start(ctx(e.t), id); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	return r
}

var testCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// testSpec is a minimal container: new mount, PID, IPC, UTS and network
// namespaces, the usual pseudo file systems, the default capabilities of
// container runtimes, no seccomp, no user namespace.
func testSpec(rootfs, cgroupsPath string, args ...string) *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: rootfs},
		Hostname: "shimtest",
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin", "HOME=/", "GREETING=hello"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: testCaps, Effective: testCaps, Permitted: testCaps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// cgroupMounts lists the mount points of every cgroup hierarchy.
func cgroupMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		i := slices.Index(fields, "-")
		if i < 0 || i+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fs := fields[i+1]; fs == "cgroup" || fs == "cgroup2" {
			out = append(out, fields[4])
		}
	}
	return out
}

// removeCgroups removes base and everything below it on every hierarchy.
func removeCgroups(t *testing.T, base string) {
	for _, m := range cgroupMounts() {
		root := filepath.Join(m, base)
		var dirs []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for range 200 {
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("cleanup: rmdir %s: %v", d, err)
			}
		}
		// The parent "/berth-test" is shared by parallel runs; remove it if
		// empty.
		unix.Rmdir(filepath.Dir(root))
	}
}

// cgroupExists tells whether path exists on the memory hierarchy (v1) or
// the unified one.
func cgroupExists(path string) bool {
	for _, m := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(m, path)); err == nil {
			return true
		}
	}
	return false
}

// logLines reads a CRI log and returns "<stream> <tag> <content>" per
// record, checking each timestamp.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		ts, rest, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("log line %q has no timestamp", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, rest)
	}
	return out
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// childrenOf lists the children of pid (all its threads).
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// cgroupProcs lists the processes of a container's cgroup (memory or
// unified hierarchy).
func cgroupProcs(t *testing.T, path string) []int {
	t.Helper()
	for _, m := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup"} {
		b, err := os.ReadFile(filepath.Join(m, path, "cgroup.procs"))
		if err != nil {
			continue
		}
		var out []int
		for _, s := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(s)
			out = append(out, n)
		}
		return out
	}
	t.Fatalf("no cgroup %s", path)
	return nil
}

// rollup returns the Rss and Pss lines of a process's smaps_rollup, in kB.
func rollup(pid int) (rss, pss, anon int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "Rss":
			rss = n
		case "Pss":
			pss = n
		case "Anonymous":
			anon = n
		}
	}
	return
}
