package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cgroupsv3 "github.com/containerd/cgroups/v3"
)

// needCgroups skips unless the test can create cgroups.
func needCgroups(t *testing.T) []hierarchy {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	hs, err := hierarchies()
	if err != nil {
		t.Skipf("no cgroups: %v", err)
	}
	return hs
}

// testBase returns a fresh top-level cgroup path and removes it (with
// whatever is left in it) when the test ends.
func testBase(t *testing.T, hs []hierarchy) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	base := "/berth-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := Remove(base, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		assertGone(t, hs, base)
	})
	return base
}

func assertGone(t *testing.T, hs []hierarchy, p string) {
	t.Helper()
	for _, h := range hs {
		if _, err := os.Lstat(filepath.Join(h.mount, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still exists on %s (%v)", p, h.name(), err)
		}
	}
}

type child struct {
	pid   int
	stdin io.WriteCloser
	// exited is closed once the child has been reaped; err is then
	// its Wait error.
	exited chan struct{}
	err    error
}

// startChild starts a shell that, once told through its stdin, execs
// `sleep 60`. Doing the exec after Place charges its new memory (a fresh
// address space) and CPU time to the new cgroup: v1 does not move charges
// a process made before it moved. The child is killed by pid and reaped
// when the test ends.
func startChild(t *testing.T) *child {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "read _; exec sleep 60")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{pid: cmd.Process.Pid, stdin: stdin, exited: make(chan struct{})}
	// Reap at once, as a shim would: a zombie left behind keeps nothing
	// in a cgroup, but it would keep the pid.
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.exited:
			return
		default:
		}
		cmd.Process.Kill() // by pid, through the handle that started it
		<-c.exited
	})
	return c
}

// exec makes the child exec sleep and waits until it has.
func (c *child) exec(t *testing.T) {
	t.Helper()
	if _, err := c.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/comm")
		if strings.TrimSpace(string(comm)) == "sleep" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child is %q, not sleep", comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPlaceStatsRemove(t *testing.T) {
	hs := needCgroups(t)
	base := testBase(t, hs)
	p := base + "/x"
	c := startChild(t)

	if err := Place(p, c.pid); err != nil {
		t.Fatal(err)
	}
	c.exec(t)

	// /proc/<pid>/cgroup shows the path on each hierarchy.
	v1, v2, err := procCgroups(strconv.Itoa(c.pid))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	switch cgroupsv3.Mode() {
	case cgroupsv3.Unified:
		if v2 != p {
			t.Errorf("0:: is %q, want %q", v2, p)
		}
	default:
		want = []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "name=systemd"}
		if cgroupsv3.Mode() == cgroupsv3.Hybrid && v2 != p {
			t.Errorf("0:: is %q, want %q", v2, p)
		}
	}
	for _, ctl := range want {
		if _, mounted := controllerHierarchy(hs, ctl); !mounted {
			continue
		}
		if v1[ctl] != p {
			t.Errorf("%s is %q, want %q", ctl, v1[ctl], p)
		}
	}
	if got, err := pidPath(strconv.Itoa(c.pid)); err != nil || got != p {
		t.Errorf("pidPath = %q, %v; want %q", got, err, p)
	}
	// Placing again, in the same place, is fine.
	if err := Place(p, c.pid); err != nil {
		t.Fatal(err)
	}

	st, err := ReadStats(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", st)
	if st.Pids < 1 {
		t.Errorf("Pids = %d", st.Pids)
	}
	if st.MemoryUsage == 0 {
		t.Errorf("MemoryUsage = 0")
	}
	if st.MemoryWorkingSet > st.MemoryUsage {
		t.Errorf("working set %d > usage %d", st.MemoryWorkingSet, st.MemoryUsage)
	}
	if st.CPUUsageNanos == 0 {
		t.Errorf("CPUUsageNanos = 0")
	}
	if st.MemoryLimit != 0 {
		t.Errorf("MemoryLimit = %d for an unlimited cgroup", st.MemoryLimit)
	}
	// User and system time come in clock ticks (10 ms) on v1: a child that
	// barely ran may have none, but never much more than its usage.
	if st.CPUUserNanos+st.CPUSystemNanos > st.CPUUsageNanos+20_000_000 {
		t.Errorf("user %d + system %d against usage %d", st.CPUUserNanos, st.CPUSystemNanos, st.CPUUsageNanos)
	}
	if st.MemoryMaxUsage < st.MemoryUsage && cgroupsv3.Mode() != cgroupsv3.Unified {
		t.Errorf("max usage %d below usage %d", st.MemoryMaxUsage, st.MemoryUsage)
	}
	if pids, err := Processes(p); err != nil || len(pids) != 1 || pids[0] != c.pid {
		t.Errorf("Processes = %v, %v; want [%d]", pids, err, c.pid)
	}
	if pids, err := Processes(base); err != nil || len(pids) != 0 {
		t.Errorf("Processes of the parent = %v, %v; want none of its own", pids, err)
	}
	if _, err := ReadIO(p); err != nil {
		t.Errorf("ReadIO: %v", err)
	}
	// The parent's usage includes the child's.
	if pst, err := ReadStats(base); err != nil || pst.Pids < 1 {
		t.Errorf("parent stats %+v, %v", pst, err)
	}

	// Busy: without kill, Remove fails naming the cgroup and removes
	// nothing.
	err = Remove(base, false)
	if err == nil || !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), p) {
		t.Fatalf("Remove(kill=false) = %v; want ErrBusy naming %s", err, p)
	}
	err = Remove(p, false)
	if err == nil || !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), p) {
		t.Fatalf("Remove(kill=false) = %v; want ErrBusy naming %s", err, p)
	}
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h.mount, p)); err != nil {
			t.Errorf("%s on %s: %v", p, h.name(), err)
		}
	}
	select {
	case <-c.exited:
		t.Fatalf("child exited: %v", c.err)
	default:
	}

	// With kill, the process dies and every directory goes.
	if err := Remove(p, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		if c.err == nil || !strings.Contains(c.err.Error(), "killed") {
			t.Errorf("child exit: %v, want killed", c.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("child still running")
	}
	assertGone(t, hs, p)
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h.mount, base)); err != nil {
			t.Errorf("the parent %s went too on %s: %v", base, h.name(), err)
		}
	}
	if _, err := ReadStats(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadStats of a removed cgroup: %v", err)
	}

	// Removing what is gone is fine.
	if err := Remove(p, false); err != nil {
		t.Fatal(err)
	}
	if err := Remove(base, false); err != nil {
		t.Fatal(err)
	}
	assertGone(t, hs, base)
}

// Remove deletes a tree children first, on every hierarchy, and kills
// processes anywhere in it.
func TestRemoveTree(t *testing.T) {
	hs := needCgroups(t)
	base := testBase(t, hs)
	for _, h := range hs {
		for _, d := range []string{"a/b/c", "a/d", "e"} {
			if err := os.MkdirAll(filepath.Join(h.mount, base, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	c1, c2 := startChild(t), startChild(t)
	if err := Place(base+"/a/b/c", c1.pid); err != nil {
		t.Fatal(err)
	}
	if err := Place(base+"/e", c2.pid); err != nil {
		t.Fatal(err)
	}
	err := Remove(base, false)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), base+"/a/b/c") {
		t.Fatalf("Remove(kill=false) = %v", err)
	}
	if err := Remove(base, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*child{c1, c2} {
		select {
		case <-c.exited:
		case <-time.After(5 * time.Second):
			t.Fatalf("child %d still running", c.pid)
		}
	}
	assertGone(t, hs, base)
}

func TestRemoveRefusesSelf(t *testing.T) {
	// Pretend this process is inside by faking the tree: procs reads the
	// cgroup.procs files of the directories it is given. Pid 0 is skipped.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())+"\n0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pids, where, err := procs([]string{dir})
	if err != nil || len(pids) != 1 || where != dir {
		t.Fatalf("procs = %v, %q, %v", pids, where, err)
	}
	err = killAll("/berth-test-self", nil, []string{dir})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "this process") {
		t.Fatalf("killAll = %v", err)
	}
}

func TestPlaceRemoveInvalid(t *testing.T) {
	for _, p := range []string{"", "relative", "/a/../b", "/a/", "/process_api", "/process_api/x"} {
		if err := Place(p, 1); err == nil {
			t.Errorf("Place(%q) accepted", p)
		}
		if err := Remove(p, true); err == nil {
			t.Errorf("Remove(%q) accepted", p)
		}
		if _, err := ReadStats(p); err == nil {
			t.Errorf("ReadStats(%q) accepted", p)
		}
	}
	if err := Remove("/", true); err == nil {
		t.Error("Remove(/) accepted")
	}
	for _, pid := range []int{0, -1} {
		if err := Place("/berth-test-never", pid); err == nil {
			t.Errorf("Place(pid %d) accepted", pid)
		}
	}
}

func TestSelfPath(t *testing.T) {
	p, err := SelfPath()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "memory" || strings.Contains(","+f[1]+",", ",memory,") {
			want = f[2]
			break
		}
		if f[0] == "0" && f[1] == "" {
			want = f[2]
		}
	}
	if p != want {
		t.Fatalf("SelfPath = %q, want %q", p, want)
	}
}
