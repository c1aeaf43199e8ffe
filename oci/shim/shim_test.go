package shim_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	seccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	const id = "life"
	b := e.bundle(id, nil, "sh", "-c", "touch /ran; echo hello; echo oops >&2; printf tail; exit 3")
	t0 := time.Now()
	cr, err := e.c.Create(cx, shim.CreateRequest{ID: id, Bundle: b, LogPath: e.logPath(id)})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Since(t0)
	if cr.Pid <= 0 {
		t.Fatalf("pid %d", cr.Pid)
	}
	st, err := e.c.State(cx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != shim.StatusCreated || st.Pid != cr.Pid || st.CreatedAt.IsZero() || !st.StartedAt.IsZero() {
		t.Fatalf("after create: %+v", st)
	}
	if rec, err := shim.ReadState(e.dir, id); err != nil || !sameState(rec, st) {
		t.Fatalf("record after create: %+v, %v; want %+v", rec, err, st)
	}
	// Created: init waits, the user process has not run.
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(b, "rootfs", "ran")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the command ran before start: %v", err)
	}
	if l := logLines(t, e.logPath(id)); len(l) != 0 {
		t.Fatalf("log before start: %q", l)
	}
	if !cgroupExists(e.cgBase + "/" + id) {
		t.Fatalf("no cgroup %s/%s", e.cgBase, id)
	}

	t1 := time.Now()
	if err := e.c.Start(cx, id); err != nil {
		t.Fatal(err)
	}
	t.Logf("latency without seccomp: create %v, start %v", created, time.Since(t1))
	if err := e.c.Start(cx, id); !errors.Is(err, shim.ErrNotRunning) {
		t.Errorf("second start: %v, want ErrNotRunning", err)
	}
	st, err = e.c.Wait(cx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != shim.StatusStopped || st.ExitCode != 3 || st.OOMKilled || st.FinishedAt.IsZero() ||
		st.StartedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) || st.StartedAt.Before(st.CreatedAt) {
		t.Fatalf("after exit: %+v", st)
	}
	if rec, err := shim.ReadState(e.dir, id); err != nil || !sameState(rec, st) {
		t.Fatalf("record after exit: %+v, %v; want %+v", rec, err, st)
	}
	got := logLines(t, e.logPath(id))
	want := map[string]bool{"stdout F hello": true, "stderr F oops": true, "stdout P tail": true}
	if len(got) != len(want) {
		t.Fatalf("log %q", got)
	}
	for _, l := range got {
		if !want[l] {
			t.Fatalf("log %q: unexpected %q", got, l)
		}
	}
	if err := e.c.Signal(cx, id, syscall.SIGTERM, false); !errors.Is(err, shim.ErrNotRunning) {
		t.Errorf("signal after exit: %v, want ErrNotRunning", err)
	}

	if err := e.c.Delete(cx, id, false); err != nil {
		t.Fatal(err)
	}
	if cgroupExists(e.cgBase + "/" + id) {
		t.Errorf("cgroup of %s left after delete", id)
	}
	if _, err := shim.ReadState(e.dir, id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record after delete: %v", err)
	}
	if _, err := e.c.State(cx, id); !errors.Is(err, shim.ErrNotFound) {
		t.Errorf("state after delete: %v, want ErrNotFound", err)
	}
	if err := e.c.Delete(cx, id, false); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if l, err := e.c.List(cx); err != nil || len(l) != 0 {
		t.Errorf("list after delete: %v, %v", l, err)
	}
}

func TestInvalidRequests(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	b := e.bundle("ok", nil, "sleep", "1000")
	for _, tc := range []struct {
		req  shim.CreateRequest
		kind error
		text string
	}{
		{shim.CreateRequest{Bundle: b}, shim.ErrInvalid, "id:"},
		{shim.CreateRequest{ID: "a/b", Bundle: b}, shim.ErrInvalid, "id:"},
		{shim.CreateRequest{ID: "x", Bundle: "rel"}, shim.ErrInvalid, "bundle:"},
		{shim.CreateRequest{ID: "x", Bundle: e.work}, shim.ErrInvalid, "bundle:"},
		{shim.CreateRequest{ID: "x", Bundle: b, LogPath: "rel.log"}, shim.ErrInvalid, "log_path:"},
		{shim.CreateRequest{ID: "x", Bundle: b, LogPath: "/nonexistent/dir/x.log"}, shim.ErrInvalid, "log_path:"},
		{shim.CreateRequest{ID: "x", Bundle: b, Tty: true}, shim.ErrInvalid, "tty:"},
	} {
		_, err := e.c.Create(cx, tc.req)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("create %+v: %v, want %v naming %q", tc.req, err, tc.kind, tc.text)
		}
	}
	if _, err := e.c.Create(cx, shim.CreateRequest{ID: "ok", Bundle: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Create(cx, shim.CreateRequest{ID: "ok", Bundle: b}); !errors.Is(err, shim.ErrExists) {
		t.Errorf("duplicate create: %v", err)
	}
	if _, err := e.c.State(cx, "nope"); !errors.Is(err, shim.ErrNotFound) {
		t.Errorf("state of unknown: %v", err)
	}
	if err := e.c.Signal(cx, "ok", syscall.Signal(99), false); !errors.Is(err, shim.ErrInvalid) || !strings.Contains(err.Error(), "signal:") {
		t.Errorf("bad signal: %v", err)
	}
	if _, err := e.c.ExecSync(cx, shim.ExecSyncRequest{ID: "ok", Cmd: []string{"true"}}); !errors.Is(err, shim.ErrNotRunning) {
		t.Errorf("exec in created container: %v", err)
	}
	if _, err := e.c.ExecSync(cx, shim.ExecSyncRequest{ID: "ok"}); !errors.Is(err, shim.ErrInvalid) || !strings.Contains(err.Error(), "cmd:") {
		t.Errorf("exec without cmd: %v", err)
	}
	// A created container that never ran is deleted without force.
	if err := e.c.Delete(cx, "ok", false); err != nil {
		t.Fatal(err)
	}
	if cgroupExists(e.cgBase + "/ok") {
		t.Errorf("cgroup left after deleting a created container")
	}
}

func TestExecSync(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	const id = "exec"
	cr := e.run(id, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{4000}}
	}, "sleep", "1000")

	r, err := e.c.ExecSync(cx, shim.ExecSyncRequest{ID: id, Cmd: []string{"echo", "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 || string(r.Stdout) != "hi\n" || len(r.Stderr) != 0 || r.TimedOut || r.StdoutTruncated {
		t.Fatalf("echo hi: %+v", r)
	}
	// Same user, capabilities and no_new_privs as the container's init.
	r, err = e.c.ExecSync(cx, shim.ExecSyncRequest{ID: id, Env: []string{"GREETING=hi", "EXTRA=1"},
		Cmd: []string{"sh", "-c", "id -u; id -G; echo $GREETING $EXTRA; grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; echo err >&2; exit 7"}})
	if err != nil {
		t.Fatal(err)
	}
	initStatus, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cr.Pid))
	var initCaps []string
	for _, l := range strings.Split(string(initStatus), "\n") {
		if strings.HasPrefix(l, "CapBnd") || strings.HasPrefix(l, "CapEff") || strings.HasPrefix(l, "NoNewPrivs") {
			initCaps = append(initCaps, l)
		}
	}
	want := "1000\n1000 4000\nhi 1\n" + strings.Join(initCaps, "\n") + "\n"
	if r.ExitCode != 7 || string(r.Stdout) != want || string(r.Stderr) != "err\n" {
		t.Fatalf("exec: code %d stdout %q stderr %q; want 7, %q, \"err\\n\"", r.ExitCode, r.Stdout, r.Stderr, want)
	}

	// Output beyond the cap is drained and dropped.
	r, err = e.c.ExecSync(cx, shim.ExecSyncRequest{ID: id, OutputCap: 1000,
		Cmd: []string{"sh", "-c", "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; echo done >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 || len(r.Stdout) != 1000 || len(r.Stderr) != 1000 || !r.StdoutTruncated || !r.StderrTruncated {
		t.Fatalf("capped exec: code %d, %d/%d bytes, truncated %v/%v", r.ExitCode, len(r.Stdout), len(r.Stderr), r.StdoutTruncated, r.StderrTruncated)
	}

	// A timeout kills the command and what it started, and reaps them.
	t0 := time.Now()
	r, err = e.c.ExecSync(cx, shim.ExecSyncRequest{ID: id, Timeout: 500 * time.Millisecond,
		Cmd: []string{"sh", "-c", "sleep 100 & sleep 101; echo never"}})
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.ExitCode != 137 || took > 2*time.Second || took < 500*time.Millisecond {
		t.Fatalf("timed-out exec: %+v after %v", r, took)
	}
	t.Logf("exec with a 500ms timeout answered after %v", took)
	if procs := cgroupProcs(t, e.cgBase+"/"+id); len(procs) != 1 || procs[0] != cr.Pid {
		t.Errorf("processes left in the container after the timeout: %v (init %d)", procs, cr.Pid)
	}
	for _, p := range childrenOf(e.pid) {
		if st, _ := procState(p); st == 'Z' {
			t.Errorf("zombie child %d of the shim", p)
		}
	}

	// Latency of an exec (no seccomp).
	var ds []time.Duration
	for range 10 {
		t0 := time.Now()
		r, err := e.c.ExecSync(cx, shim.ExecSyncRequest{ID: id, Cmd: []string{"true"}})
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("true: %+v %v", r, err)
		}
		ds = append(ds, time.Since(t0))
	}
	t.Logf("exec latency without seccomp: median %v of %d (min %v)", median(ds), len(ds), slicesMin(ds))
}

// sameState compares states with time.Equal (a record read back has no
// monotonic clock reading).
func sameState(a, b shim.ContainerState) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.StartedAt.Equal(b.StartedAt) || !a.FinishedAt.Equal(b.FinishedAt) {
		return false
	}
	a.CreatedAt, a.StartedAt, a.FinishedAt = b.CreatedAt, b.StartedAt, b.FinishedAt
	return a == b
}

func slicesMin(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func TestSignal(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	// PID 1 of a PID namespace only gets the signals it handles.
	e.run("term", nil, "sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait")
	e.run("kill", nil, "sleep", "1000")
	e.run("all", nil, "sh", "-c", "sleep 1000 & sleep 1001 & wait; echo children-gone")
	time.Sleep(200 * time.Millisecond) // let the traps and children be set up

	if err := e.c.Signal(cx, "term", syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	st, err := e.c.Wait(cx, "term")
	if err != nil || st.ExitCode != 143 {
		t.Fatalf("SIGTERM: %+v %v", st, err)
	}
	if err := e.c.Signal(cx, "kill", syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	st, err = e.c.Wait(cx, "kill")
	if err != nil || st.ExitCode != 137 || st.Message != "killed by signal SIGKILL" {
		t.Fatalf("SIGKILL: %+v %v", st, err)
	}
	if err := e.c.Signal(cx, "all", syscall.SIGTERM, true); err != nil {
		t.Fatal(err)
	}
	st, err = e.c.Wait(cx, "all")
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("SIGTERM to all: %+v %v", st, err)
	}
	if l := logLines(t, e.logPath("all")); len(l) != 1 || l[0] != "stdout F children-gone" {
		t.Fatalf("log of all: %q", l)
	}

	// Delete refuses a running container without force.
	e.run("busy", nil, "sleep", "1000")
	if err := e.c.Delete(cx, "busy", false); !errors.Is(err, shim.ErrFailedPrecondition) {
		t.Fatalf("delete running: %v", err)
	}
	if err := e.c.Delete(cx, "busy", true); err != nil {
		t.Fatal(err)
	}
}

func TestOOMKilled(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	limit := int64(32 << 20)
	e.run("oom", func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}, "tail", "/dev/zero")
	st, err := e.c.Wait(cx, "oom")
	if err != nil {
		t.Fatal(err)
	}
	if !st.OOMKilled || st.ExitCode != 137 {
		t.Fatalf("memory hog: %+v", st)
	}
	if rec, _ := shim.ReadState(e.dir, "oom"); !rec.OOMKilled {
		t.Fatalf("record: %+v", rec)
	}
	// And one that exits normally is not.
	e.run("fine", func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}, "true")
	if st, err := e.c.Wait(cx, "fine"); err != nil || st.OOMKilled || st.ExitCode != 0 {
		t.Fatalf("fine: %+v %v", st, err)
	}
}

func TestReopenLog(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	const id = "rot"
	e.run(id, nil, "sh", "-c", "echo one; while [ ! -e /go ]; do sleep 0.02; done; echo two; sleep 1000")
	path := e.logPath(id)
	waitFor(t, 5*time.Second, "first line", func() bool { return len(logLines(t, path)) == 1 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.ReopenLog(cx, id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.work, "bundles", id, "rootfs", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "second line", func() bool { return len(logLines(t, path)) == 1 })
	if l := logLines(t, path); l[0] != "stdout F two" {
		t.Fatalf("new log: %q", l)
	}
	if l := logLines(t, path+".1"); len(l) != 1 || l[0] != "stdout F one" {
		t.Fatalf("rotated log: %q", l)
	}
	if err := e.c.Signal(cx, id, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	e.c.Wait(cx, id)
	if err := e.c.ReopenLog(cx, id); !errors.Is(err, shim.ErrNotRunning) {
		t.Fatalf("reopen after exit: %v", err)
	}
}

func TestTty(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	const id = "tty"
	b := e.bundle(id, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	}, "sh", "-c", "echo tty-hello; [ -t 1 ] && echo is-a-tty; stty size; echo to-stderr >&2")
	if _, err := e.c.Create(cx, shim.CreateRequest{ID: id, Bundle: b, LogPath: e.logPath(id), Tty: true, Stdin: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Start(cx, id); err != nil {
		t.Fatal(err)
	}
	st, err := e.c.Wait(cx, id)
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	got := strings.Join(logLines(t, e.logPath(id)), "|")
	if want := "stdout F tty-hello|stdout F is-a-tty|stdout F 30 100|stdout F to-stderr"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

func TestSeccompLatency(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	measure := func(name string, mod func(*specs.Spec)) {
		var create, start, exec []time.Duration
		for i := range 5 {
			id := fmt.Sprintf("%s-%d", name, i)
			b := e.bundle(id, mod, "sleep", "1000")
			t0 := time.Now()
			if _, err := e.c.Create(cx, shim.CreateRequest{ID: id, Bundle: b, LogPath: e.logPath(id)}); err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			if err := e.c.Start(cx, id); err != nil {
				t.Fatal(err)
			}
			t2 := time.Now()
			r, err := e.c.ExecSync(cx, shim.ExecSyncRequest{ID: id, Cmd: []string{"sh", "-c", "grep Seccomp: /proc/self/status"}})
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("exec: %+v %v", r, err)
			}
			exec = append(exec, time.Since(t2))
			create, start = append(create, t1.Sub(t0)), append(start, t2.Sub(t1))
			wantMode := "0"
			if mod != nil {
				wantMode = "2"
			}
			if f := strings.Fields(string(r.Stdout)); len(f) != 2 || f[1] != wantMode {
				t.Fatalf("%s: exec'd process has %q, want seccomp mode %s", name, r.Stdout, wantMode)
			}
			if err := e.c.Delete(cx, id, true); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: create %v + start %v = %v (medians of %d); exec %v", name, median(create), median(start),
			median(create)+median(start), len(create), median(exec))
	}
	measure("no-seccomp", nil)
	measure("seccomp-native", func(s *specs.Spec) {
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			t.Fatal(err)
		}
		p.Architectures = []specs.Arch{specs.ArchX86_64}
		s.Linux.Seccomp = p
	})
	measure("seccomp-full", func(s *specs.Spec) {
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = p
	})
}

// TestShimIsDetached checks what keeps the shim apart from berthd: its own
// session, its own cgroups, stdio not inherited, a socket file in a 0700
// directory, and survival of the launcher's death.
func TestShimIsDetached(t *testing.T) {
	e := newEnv(t)
	// The launcher is a separate process (this test binary in helper
	// mode), killed with its whole process group once the shim is up.
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), helperEnv+"=1", "HELPER_BIN="+shimBin, "HELPER_DIR="+e.dir,
		"HELPER_CGROUP="+e.cgBase+"/shim", "HELPER_LOG="+filepath.Join(e.work, "shim.log"))
	helper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	e.pid = pid
	syscall.Kill(-helper.Process.Pid, syscall.SIGTERM)
	syscall.Kill(-helper.Process.Pid, syscall.SIGKILL)
	helper.Wait()

	c, err := shim.Connect(e.dir)
	if err != nil {
		t.Fatalf("connect after the launcher died: %v", err)
	}
	e.c = c
	t.Cleanup(func() { e.shutdown() })
	if c.Pid() != pid {
		t.Fatalf("shim pid %d, launcher said %d", c.Pid(), pid)
	}
	// SIGTERM, SIGINT and SIGHUP do not stop it.
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		syscall.Kill(pid, s)
	}
	time.Sleep(50 * time.Millisecond)
	e.run("c", nil, "sh", "-c", "echo alive; sleep 1000")

	sid, _ := unix.Getsid(pid)
	mySid, _ := unix.Getsid(0)
	if sid != pid || sid == mySid {
		t.Errorf("shim session %d (pid %d, ours %d)", sid, pid, mySid)
	}
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[2] != e.cgBase+"/shim" {
			t.Errorf("shim cgroup line %q, want %s/shim", l, e.cgBase)
		}
	}
	for fd, want := range map[int]string{0: "/dev/null", 1: filepath.Join(e.work, "shim.log"), 2: filepath.Join(e.work, "shim.log")} {
		if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); got != want {
			t.Errorf("shim fd %d is %q, want %q", fd, got, want)
		}
	}
	fi, err := os.Stat(e.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("shim dir mode %v %v", fi.Mode(), err)
	}
	sock := filepath.Join(e.dir, shim.SocketName)
	fi, err = os.Lstat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket file %v %v", fi, err)
	}
	unixSocks, _ := os.ReadFile("/proc/net/unix")
	if !strings.Contains(string(unixSocks), " "+sock+"\n") {
		t.Errorf("%s not a listening filesystem socket in /proc/net/unix", sock)
	}
	if strings.Contains(string(unixSocks), "@"+sock) {
		t.Errorf("abstract socket for %s", sock)
	}
	// A second launch for the same directory is refused.
	if _, _, err := shim.Launch(ctx(t), shim.LaunchOptions{Binary: shimBin, PodID: "x", Dir: e.dir, CgroupPath: e.cgBase + "/shim2"}); !errors.Is(err, shim.ErrExists) {
		t.Errorf("second launch: %v", err)
	}
	waitFor(t, 5*time.Second, "log line", func() bool { return len(logLines(t, e.logPath("c"))) == 1 })

}

// TestShimMemory reports what a pod's shim costs: several pods with two
// running containers each (file pages of the binary are shared between
// shims, so Pss falls as pods are added).
func TestShimMemory(t *testing.T) {
	const pods = 4
	var envs []*testEnv
	for i := range pods {
		e := newEnv(t).launch()
		e.run(fmt.Sprintf("a%d", i), nil, "sleep", "1000")
		e.run(fmt.Sprintf("b%d", i), nil, "sh", "-c", "echo hi; sleep 1000")
		envs = append(envs, e)
	}
	time.Sleep(300 * time.Millisecond)
	var rss, pss, anon int
	for i, e := range envs {
		r, p, a := rollup(e.pid)
		usage, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", e.cgBase, "shim", "memory.usage_in_bytes"))
		t.Logf("shim %d (pid %d): Rss %d kB, Pss %d kB, Anonymous %d kB; its memory cgroup charges %s bytes",
			i, e.pid, r, p, a, strings.TrimSpace(string(usage)))
		rss, pss, anon = rss+r, pss+p, anon+a
	}
	t.Logf("per shim with %d pods of 2 running containers: Rss %d kB, Pss %d kB, Anonymous %d kB", pods, rss/pods, pss/pods, anon/pods)
}

const helperEnv = "BERTH_SHIM_TEST_LAUNCHER"

// launchHelper plays berthd: launch a shim, print its pid, wait to be
// killed.
func launchHelper() int {
	c, pid, err := shim.Launch(context.Background(), shim.LaunchOptions{
		Binary: os.Getenv("HELPER_BIN"), PodID: "detached", Dir: os.Getenv("HELPER_DIR"),
		CgroupPath: os.Getenv("HELPER_CGROUP"), LogPath: os.Getenv("HELPER_LOG"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = c
	fmt.Println(pid)
	time.Sleep(time.Hour)
	return 0
}

func TestShimKilled(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	cr := e.run("c", nil, "sh", "-c", "echo before; sleep 1000")
	waitFor(t, 5*time.Second, "log line", func() bool { return len(logLines(t, e.logPath("c"))) == 1 })
	waitErr := make(chan error, 1)
	go func() {
		_, err := e.c.Wait(context.Background(), "c")
		waitErr <- err
	}()
	time.Sleep(50 * time.Millisecond)

	if err := syscall.Kill(e.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitGone(e.pid, 5*time.Second) {
		t.Fatal("shim survived SIGKILL")
	}
	// The container's processes and cgroup outlive the shim; clean up by PID.
	t.Cleanup(func() {
		syscall.Kill(cr.Pid, syscall.SIGKILL)
		waitGone(cr.Pid, 5*time.Second)
	})
	select {
	case err := <-waitErr:
		if !errors.Is(err, shim.ErrShimGone) {
			t.Errorf("pending wait: %v, want ErrShimGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("pending wait did not return")
	}
	if _, err := e.c.State(cx, "c"); !errors.Is(err, shim.ErrShimGone) {
		t.Errorf("state: %v, want ErrShimGone", err)
	}
	if _, err := shim.Connect(e.dir); !errors.Is(err, shim.ErrShimGone) {
		t.Errorf("connect: %v, want ErrShimGone", err)
	}
	st, err := shim.ReadState(e.dir, "c")
	if err != nil || st.Status != shim.StatusRunning || st.Pid != cr.Pid || st.StartedAt.IsZero() {
		t.Fatalf("last record: %+v %v", st, err)
	}
	if s, ok := procState(cr.Pid); !ok || s == 'Z' {
		t.Errorf("container init %d did not survive its shim", cr.Pid)
	}
	e.c = nil // nothing to shut down
}

func TestConnectAndShutdown(t *testing.T) {
	e := newEnv(t)
	// Started directly so that its exit status can be checked.
	logPath := filepath.Join(e.work, "shim.log")
	cmd := exec.Command(shimBin, "--pod", "p", "--dir", e.dir, "--log", logPath, "--cgroup", e.cgBase+"/shim")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	var c *shim.Client
	waitFor(t, 5*time.Second, "socket", func() bool {
		var err error
		c, err = shim.Connect(e.dir)
		return err == nil
	})
	cx := ctx(t)
	e.c, e.pid = c, cmd.Process.Pid
	e.run("a", nil, "sleep", "1000")
	c.Close()

	// A new client (berthd after a restart) sees the same containers.
	c2, err := shim.Connect(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c2.Info(cx); err != nil || info.PodID != "p" || info.Containers != 1 || info.Pid != cmd.Process.Pid {
		t.Fatalf("info %+v %v", info, err)
	}
	l, err := c2.List(cx)
	if err != nil || len(l) != 1 || l[0].ID != "a" || l[0].Status != shim.StatusRunning {
		t.Fatalf("list %+v %v", l, err)
	}
	if err := c2.Shutdown(cx); !errors.Is(err, shim.ErrFailedPrecondition) || !strings.Contains(err.Error(), "a") {
		t.Fatalf("shutdown with a container: %v", err)
	}
	if err := c2.Delete(cx, "a", true); err != nil {
		t.Fatal(err)
	}
	if err := c2.Shutdown(cx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("shim exit: %v", exitErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shim did not exit after shutdown")
	}
	if _, err := os.Stat(filepath.Join(e.dir, shim.SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left: %v", err)
	}
	if cgroupExists(e.cgBase + "/shim") {
		t.Errorf("shim cgroup left")
	}
	if _, err := c2.Info(cx); !errors.Is(err, shim.ErrShimGone) {
		t.Errorf("info after shutdown: %v", err)
	}
}

// TestOrphanReaped: a container in the host's PID namespace leaves a
// background process behind; it is reparented to the shim (a child
// subreaper), and the shim reaps it when it exits.
func TestOrphanReaped(t *testing.T) {
	e := newEnv(t).launch()
	cx := ctx(t)
	e.run("hostpid", func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	}, "sh", "-c", "sleep 0.3 & echo $! > /orphan; exit 0")
	if st, err := e.c.Wait(cx, "hostpid"); err != nil || st.ExitCode != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	b, err := os.ReadFile(filepath.Join(e.work, "bundles", "hostpid", "rootfs", "orphan"))
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("reaped orphan pid %d", orphan)
	waitFor(t, 15*time.Second, "the orphan to be reaped", func() bool {
		log, _ := os.ReadFile(filepath.Join(e.work, "shim.log"))
		return strings.Contains(string(log), want)
	})
	if _, ok := procState(orphan); ok {
		t.Errorf("orphan %d still in the process table", orphan)
	}
}

// TestPrivilegesNotHeld: what the runtime cannot grant is refused up front,
// naming the field (this host's root lacks CAP_SYS_RESOURCE).
func TestPrivilegesNotHeld(t *testing.T) {
	status, _ := os.ReadFile("/proc/self/status")
	var capEff uint64
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			capEff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if capEff&(1<<unix.CAP_SYS_RESOURCE) != 0 {
		t.Skip("CAP_SYS_RESOURCE is held here")
	}
	e := newEnv(t).launch()
	cx := ctx(t)
	adj := -500
	for name, tc := range map[string]struct {
		mod   func(*specs.Spec)
		field string
	}{
		"caps": {func(s *specs.Spec) {
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_RESOURCE")
		}, "process.capabilities.effective: CAP_SYS_RESOURCE"},
		"oom": {func(s *specs.Spec) { s.Process.OOMScoreAdj = &adj }, "process.oomScoreAdj"},
	} {
		_, err := e.c.Create(cx, shim.CreateRequest{ID: name, Bundle: e.bundle(name, tc.mod, "true")})
		if !errors.Is(err, shim.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want invalid naming %q", name, err, tc.field)
		}
	}
}
