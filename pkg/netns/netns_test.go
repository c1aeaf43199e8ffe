package netns

import (
	"errors"
	"github.com/moby/sys/mountinfo"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// mountedAt reports whether /proc/self/mountinfo lists a mount on path.
func mountedAt(t *testing.T, path string) bool {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil {
		t.Fatal(err)
	}
	return len(mounts) > 0
}

func pinned(t *testing.T, kind int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ns")
	if err := New(kind, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Remove(p) })
	return p
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// readTrim is readFile for code running off the test goroutine.
func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

func TestNetnsHasOnlyLoopback(t *testing.T) {
	needRoot(t)
	p := pinned(t, Net)
	if !IsPinned(p) {
		t.Fatal("IsPinned false for a pinned namespace")
	}
	if inode(t, p) == inode(t, "/proc/self/ns/net") {
		t.Fatal("pinned netns is the host's")
	}
	var names []string
	if err := Do(p, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "lo" {
		t.Fatalf("interfaces in new netns: %v, want [lo]", names)
	}
	// Back on the host, the host's interfaces are visible again.
	host, _ := net.Interfaces()
	if len(host) < 2 {
		t.Logf("host has only %d interfaces", len(host))
	}
}

func TestDoReturnsFnErrorAndRestores(t *testing.T) {
	needRoot(t)
	p := pinned(t, Net)
	boom := errors.New("boom")
	runtime.LockOSThread()
	hostNS := inode(t, "/proc/thread-self/ns/net")
	runtime.UnlockOSThread()
	for i := 0; i < 20; i++ {
		if err := Do(p, func() error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("Do: %v, want boom", err)
		}
		// Pinning, too, leaves no thread behind in the new namespace, not
		// even the main thread, which the runtime parks instead of ending.
		q := filepath.Join(t.TempDir(), "ns")
		if err := New(Net, q); err != nil {
			t.Fatal(err)
		}
		if err := Remove(q); err != nil {
			t.Fatal(err)
		}
	}
	// Every thread of the process must be back in the host namespace.
	runtime.GC()
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err != nil {
			continue // thread exited meanwhile
		}
		if st.Ino != hostNS {
			t.Fatalf("thread %s left in another network namespace", task.Name())
		}
	}
	if err := Do(filepath.Join(t.TempDir(), "missing"), func() error { return nil }); err == nil {
		t.Fatal("Do on a missing path succeeded")
	}
	// A file that is no network namespace is refused by setns.
	notns := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(notns, nil, 0o644)
	if err := Do(notns, func() error { return nil }); err == nil {
		t.Fatal("Do on a plain file succeeded")
	}
}

func BenchmarkNewRemove(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	p := filepath.Join(b.TempDir(), "ns")
	for i := 0; i < b.N; i++ {
		if err := New(Net, p); err != nil {
			b.Fatal(err)
		}
		if err := Remove(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNewSetAndRemove(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	paths, err := NewSet(dir, Net, IPC, UTS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			_ = Remove(p)
		}
	})
	for kind, name := range map[int]string{Net: "net", IPC: "ipc", UTS: "uts"} {
		p := paths[kind]
		if p != filepath.Join(dir, name) {
			t.Fatalf("path for %s: %s", name, p)
		}
		if inode(t, p) == inode(t, "/proc/self/ns/"+name) {
			t.Fatalf("pinned %s namespace is the host's", name)
		}
		if !mountedAt(t, p) {
			t.Fatalf("%s not in mountinfo", p)
		}
	}
	// Pinning again over a live namespace is refused, and leaves it alone.
	if err := New(Net, paths[Net]); !errors.Is(err, os.ErrExist) {
		t.Fatalf("New over a pinned file: %v, want ErrExist", err)
	}
	if !IsPinned(paths[Net]) {
		t.Fatal("refused New removed the existing pin")
	}
	for _, p := range paths {
		if err := Remove(p); err != nil {
			t.Fatal(err)
		}
		if mountedAt(t, p) {
			t.Fatalf("%s still mounted after Remove", p)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still exists after Remove: %v", p, err)
		}
		// Removing again is fine.
		if err := Remove(p); err != nil {
			t.Fatalf("second Remove: %v", err)
		}
	}
}

func TestNewSetUndoesOnError(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if _, err := NewSet(dir, Net, unix.CLONE_NEWPID); err == nil {
		t.Fatal("NewSet with a PID namespace succeeded")
	}
	if _, err := NewSet(filepath.Join(dir, "missing"), Net, IPC); err == nil {
		t.Fatal("NewSet into a missing directory succeeded")
	}
	// A pinned ipc file makes the set fail after net was created.
	if err := New(IPC, filepath.Join(dir, "ipc")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Remove(filepath.Join(dir, "ipc")) })
	if _, err := NewSet(dir, Net, IPC); err == nil {
		t.Fatal("NewSet over a pinned file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "net")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed NewSet left net behind: %v", err)
	}
}

func TestSetHostname(t *testing.T) {
	needRoot(t)
	p := pinned(t, UTS)
	before, _ := os.Hostname()
	if err := SetHostname(p, "berth-test-pod"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Hostname()
	if after != before {
		t.Fatalf("host hostname changed from %q to %q", before, after)
	}
	var inside string
	if err := inNamespaces(map[int]string{UTS: p}, func() error {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return err
		}
		inside = unix.ByteSliceToString(u.Nodename[:])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != "berth-test-pod" {
		t.Fatalf("hostname inside: %q", inside)
	}
	if err := SetHostname(p, strings.Repeat("a", 65)); err == nil {
		t.Fatal("65-byte hostname accepted")
	}
}

func TestSetSysctls(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	paths, err := NewSet(dir, Net, IPC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			_ = Remove(p)
		}
	})
	const portFile = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	const shmFile = "/proc/sys/kernel/shmmax"
	hostPort := readFile(t, portFile)
	hostShm := readFile(t, shmFile)
	wantPort := "80"
	if hostPort == wantPort {
		wantPort = "81"
	}
	wantShm := "123456789"
	if hostShm == wantShm {
		wantShm = "123456788"
	}
	if err := SetSysctls(paths[Net], paths[IPC], map[string]string{
		"net.ipv4.ip_unprivileged_port_start": wantPort,
		"kernel.shmmax":                       wantShm,
		"net/ipv4/conf/lo/forwarding":         "1",
	}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, portFile); got != hostPort {
		t.Fatalf("host ip_unprivileged_port_start changed: %s -> %s", hostPort, got)
	}
	if got := readFile(t, shmFile); got != hostShm {
		t.Fatalf("host shmmax changed: %s -> %s", hostShm, got)
	}
	var gotPort, gotShm, gotFwd string
	if err := inNamespaces(map[int]string{Net: paths[Net], IPC: paths[IPC]}, func() error {
		gotPort = readTrim(portFile)
		gotShm = readTrim(shmFile)
		gotFwd = readTrim("/proc/sys/net/ipv4/conf/lo/forwarding")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if gotPort != wantPort || gotShm != wantShm || gotFwd != "1" {
		t.Fatalf("inside: port %s shmmax %s lo forwarding %s, want %s %s 1", gotPort, gotShm, gotFwd, wantPort, wantShm)
	}
}

// The mechanism SetSysctls relies on: a /proc/sys/net file belongs to the
// namespace of the thread that opened it, fixed at open time.
func TestSysctlFileBindsAtOpen(t *testing.T) {
	needRoot(t)
	p := pinned(t, Net)
	const portFile = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	hostPort := readFile(t, portFile)
	want := "90"
	if hostPort == want {
		want = "91"
	}
	if err := SetSysctls(p, "", map[string]string{"net.ipv4.ip_unprivileged_port_start": want}); err != nil {
		t.Fatal(err)
	}
	// Opened on a host thread, read inside the namespace: the host's value.
	var viaHostOpen, viaNSOpen string
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open(portFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Do(p, func() error {
		buf := make([]byte, 32)
		n, err := f.ReadAt(buf, 0)
		if err != nil && n == 0 {
			return err
		}
		viaHostOpen = strings.TrimSpace(string(buf[:n]))
		viaNSOpen = readTrim(portFile)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if viaHostOpen != hostPort || viaNSOpen != want {
		t.Fatalf("opened on host: %s (host %s); opened in netns: %s (want %s)", viaHostOpen, hostPort, viaNSOpen, want)
	}
}

func TestSetSysctlsRejects(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	paths, err := NewSet(dir, Net, IPC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			_ = Remove(p)
		}
	})
	hostPort := readFile(t, "/proc/sys/net/ipv4/ip_unprivileged_port_start")
	bad := []map[string]string{
		{"net.ipv4.ip_unprivileged_port_start": "80\n"},
		{"net.ipv4.ip_unprivileged_port_start": "80=1"},
		{"net.ipv4.ip_unprivileged_port_start": "8\x000"},
		{"net.ipv4.IP_forward": "1"},
		{"net.ipv4.ip forward": "1"},
		{"net..ipv4": "1"},
		{"net/../kernel/pid_max": "1"},
		{"": "1"},
		{"kernel.pid_max": "40000"},    // not namespaced
		{"kernel.hostname": "x"},       // UTS, not handled here
		{"vm.swappiness": "1"},         // host-wide
		{"net.ipv4.no_such_knob": "1"}, // unknown
		{"net.ipv4.ip_unprivileged_port_start": "notanumber"},
	}
	for _, s := range bad {
		if err := SetSysctls(paths[Net], paths[IPC], s); err == nil {
			t.Errorf("SetSysctls(%q) succeeded", s)
		}
	}
	if err := SetSysctls("", paths[IPC], map[string]string{"net.ipv4.ip_forward": "1"}); err == nil {
		t.Error("net sysctl without a netns succeeded")
	}
	if err := SetSysctls(paths[Net], "", map[string]string{"kernel.shmmax": "1"}); err == nil {
		t.Error("ipc sysctl without an ipc ns succeeded")
	}
	if got := readFile(t, "/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != hostPort {
		t.Fatalf("host value changed to %s", got)
	}
}

func TestSysctlPath(t *testing.T) {
	for name, want := range map[string]string{
		"net.ipv4.ip_forward":              "net/ipv4/ip_forward",
		"net.ipv4.conf.eth0/100.rp_filter": "net/ipv4/conf/eth0.100/rp_filter",
		"net/ipv4/conf/eth0.100/rp_filter": "net/ipv4/conf/eth0.100/rp_filter",
		"kernel.shm_rmid_forced":           "kernel/shm_rmid_forced",
		"fs.mqueue.msg_max":                "fs/mqueue/msg_max",
	} {
		got, err := sysctlPath(name)
		if err != nil || got != want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestEnsureSharedMount(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "pins")
	t.Cleanup(func() {
		for mountedAt(t, dir) {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for i := 0; i < 2; i++ {
		if err := EnsureSharedMount(dir); err != nil {
			t.Fatal(err)
		}
		found, shared, err := mountPropagation(dir)
		if err != nil || !found || !shared {
			t.Fatalf("after EnsureSharedMount: mount point %v shared %v err %v", found, shared, err)
		}
	}
	// Only one mount was made: after one unmount it is no mount point.
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if mountedAt(t, dir) {
		t.Fatal("EnsureSharedMount stacked mounts")
	}
	// Namespaces pin below it and go away cleanly.
	if err := EnsureSharedMount(dir); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "net")
	if err := New(Net, p); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if mountedAt(t, p) {
		t.Fatal("netns still mounted")
	}
}

func TestSetLoopbackUp(t *testing.T) {
	needRoot(t)
	p := pinned(t, Net)
	for i := 0; i < 2; i++ { // the second call finds it up
		if err := SetLoopbackUp(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := Do(p, func() error {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		if lo.Flags&net.FlagUp == 0 {
			return errors.New("lo is down")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		t.Fatal(err)
	}
}
