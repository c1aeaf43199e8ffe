package rootfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// userNamespace starts a process in a new user namespace mapping 0 to
// 100000 and returns the path of that namespace.
func userNamespace(t *testing.T) string {
	t.Helper()
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: m, GidMappings: m}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid)
}

// mountsUnder counts the mount points at or below dir (the mount point
// field of mountinfo, not the options, which name overlayfs' layers).
func mountsUnder(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			n++
		}
	}
	return n
}

func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

func TestMountIDMapped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	// The writer below runs as host 100000: it must reach the root.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	lower1, lower2 := filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	for _, d := range []string{filepath.Join(lower1, "etc"), lower2} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(lower1, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(lower2, "app"), []byte("top"), 0o755)
	os.WriteFile(filepath.Join(lower2, "user-file"), []byte("u"), 0o644)
	os.Chown(filepath.Join(lower2, "user-file"), 1000, 1000)

	l := NewLayout(filepath.Join(dir, "data"), filepath.Join(dir, "state"))
	if err := MountIDMapped([]string{lower1, lower2}, l, "", userNamespace(t), 100000, 100000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount(l.Target) })

	// Through the idmapped layers the image's root owns its files, as
	// host 100000; an unprivileged file keeps its offset.
	for path, want := range map[string]uint32{"": 100000, "etc": 100000, "etc/passwd": 100000, "app": 100000, "user-file": 101000} {
		if uid, gid := owner(t, filepath.Join(l.Target, path)); uid != want || gid != want {
			t.Errorf("/%s owned by %d:%d, want %d", path, uid, gid, want)
		}
	}
	if uid, _ := owner(t, l.Upper); uid != 100000 {
		t.Errorf("upper dir owned by %d", uid)
	}
	// The idmapped mounts are gone once the overlay stands.
	if _, err := os.Stat(LowersDir(l.Target)); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", LowersDir(l.Target), err)
	}
	if mountsUnder(t, LowersDir(l.Target)) > 0 {
		t.Error("idmapped layers still mounted")
	}

	// The mapped root (host 100000, no capability on the host) may change
	// the image's /etc and create files; what it writes is its own.
	os.Chmod(filepath.Dir(l.Target), 0o711)
	w := exec.Command("sh", "-c", "echo changed >> etc/passwd && echo new > etc/created")
	w.Dir = l.Target
	w.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 100000, Gid: 100000}}
	if out, err := w.CombinedOutput(); err != nil {
		t.Fatalf("mapped root cannot write: %v: %s", err, out)
	}
	for _, f := range []string{"etc/passwd", "etc/created"} {
		if uid, _ := owner(t, filepath.Join(l.Upper, f)); uid != 100000 {
			t.Errorf("upper %s owned by %d, want 100000", f, uid)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(lower1, "etc", "passwd")); strings.Contains(string(data), "changed") {
		t.Fatal("a lower layer changed")
	}
	if uid, _ := owner(t, filepath.Join(lower1, "etc", "passwd")); uid != 0 {
		t.Fatalf("a lower layer's owner changed to %d", uid)
	}

	if err := Unmount(l.Target); err != nil {
		t.Fatal(err)
	}
	if n := mountsUnder(t, dir); n > 0 {
		t.Fatalf("%d mounts left", n)
	}
}

func TestMountIDMappedFailureLeavesNoMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.MkdirAll(good, 0o755)
	l := NewLayout(filepath.Join(dir, "data"), filepath.Join(dir, "state"))
	err := MountIDMapped([]string{good, filepath.Join(dir, "missing")}, l, "", userNamespace(t), 100000, 100000)
	if err == nil {
		Unmount(l.Target)
		t.Fatal("no error for a missing layer")
	}
	if n := mountsUnder(t, dir); n > 0 {
		t.Fatalf("%d mounts left after %v", n, err)
	}
	if _, err := os.Stat(LowersDir(l.Target)); !os.IsNotExist(err) {
		t.Errorf("%s still there", LowersDir(l.Target))
	}
	// A path that is no user namespace is refused too.
	if err := MountIDMapped([]string{good}, l, "", filepath.Join(dir, "nope"), 100000, 100000); err == nil {
		t.Error("no error without a user namespace")
	}
}

func TestUnmountLowersTakesStrays(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer")
	os.MkdirAll(layer, 0o755)
	os.WriteFile(filepath.Join(layer, "keep"), []byte("k"), 0o644)
	target := filepath.Join(dir, "state", "rootfs")
	// What a crash between attaching and detaching leaves.
	stray := filepath.Join(LowersDir(target), "0")
	os.MkdirAll(stray, 0o700)
	if err := syscall.Mount(layer, stray, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := UnmountLowers(target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(LowersDir(target)); !os.IsNotExist(err) {
		t.Errorf("%s still there", LowersDir(target))
	}
	if _, err := os.Stat(filepath.Join(layer, "keep")); err != nil {
		t.Fatalf("the layer lost its file: %v", err)
	}
	if err := UnmountLowers(target); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

// TestMountReadOnlyIDMapped: an image volume for a pod in a user namespace
// shows the node root's files as owned by the namespace's root (host
// 100000 from outside), is read-only, and leaves no idmapped layer
// mounted; with one layer as with several.
func TestMountReadOnlyIDMapped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	userns := userNamespace(t)
	dir := t.TempDir()
	var lowers []string
	for i, name := range []string{"bottom", "top"} {
		l := filepath.Join(dir, "layer"+strconv.Itoa(i))
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, l)
	}
	for _, tc := range []struct {
		name   string
		lowers []string
		files  []string
	}{
		{"one layer", lowers[:1], []string{"bottom"}},
		{"two layers", lowers, []string{"bottom", "top"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := MountReadOnlyIDMapped(tc.lowers, target, userns); err != nil {
				t.Fatal(err)
			}
			defer Unmount(target)
			for _, f := range tc.files {
				if uid, gid := owner(t, filepath.Join(target, f)); uid != 100000 || gid != 100000 {
					t.Errorf("%s owned by %d:%d, want 100000:100000", f, uid, gid)
				}
			}
			if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err == nil {
				t.Error("wrote into a read-only image volume")
			}
			if n := mountsUnder(t, LowersDir(target)); n != 0 {
				t.Errorf("%d idmapped layers left mounted", n)
			}
			if err := Unmount(target); err != nil {
				t.Fatal(err)
			}
			if n := mountsUnder(t, target); n != 0 {
				t.Errorf("%d mounts left at %s", n, target)
			}
		})
	}
}
