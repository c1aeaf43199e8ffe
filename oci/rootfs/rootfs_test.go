package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOptionsOrderAndRefusals(t *testing.T) {
	l := Layout{Upper: "/u", Work: "/w", Target: "/t"}
	got, err := Options([]string{"/l/bottom", "/l/middle", "/l/top"}, l, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "lowerdir=/l/top:/l/middle:/l/bottom,upperdir=/u,workdir=/w") {
		t.Fatalf("options %q", got)
	}
	if _, err := Options(nil, l, ""); err == nil {
		t.Fatal("no layers accepted")
	}
	if _, err := Options([]string{"/a:b"}, l, ""); err == nil {
		t.Fatal("a ':' in a layer path accepted")
	}
	if got, _ := Options([]string{"/a"}, l, "system_u:object_r:container_file_t:s0"); !strings.Contains(got, `context="system_u`) {
		t.Fatalf("mount label missing: %q", got)
	}
}

func TestMountStacksLayersAndUnmounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount overlayfs")
	}
	dir := t.TempDir()
	lower1, lower2 := filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	os.MkdirAll(lower1, 0o755)
	os.MkdirAll(lower2, 0o755)
	os.WriteFile(filepath.Join(lower1, "a"), []byte("bottom"), 0o644)
	os.WriteFile(filepath.Join(lower1, "b"), []byte("bottom"), 0o644)
	os.WriteFile(filepath.Join(lower2, "a"), []byte("top"), 0o644)
	// A whiteout in the top layer hides b.
	if err := unix.Mknod(filepath.Join(lower2, "b"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	l := NewLayout(filepath.Join(dir, "data"), filepath.Join(dir, "state"))
	if err := Mount([]string{lower1, lower2}, l, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount(l.Target) })
	if data, _ := os.ReadFile(filepath.Join(l.Target, "a")); string(data) != "top" {
		t.Fatalf("top layer does not win: %q", data)
	}
	if _, err := os.Stat(filepath.Join(l.Target, "b")); !os.IsNotExist(err) {
		t.Fatalf("whiteout ignored: %v", err)
	}
	os.WriteFile(filepath.Join(l.Target, "new"), []byte("x"), 0o644)
	if _, err := os.Stat(filepath.Join(l.Upper, "new")); err != nil {
		t.Fatalf("write did not land in the upper dir: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(lower2, "a")); string(data) != "top" {
		t.Fatal("a lower layer changed")
	}
	if err := Unmount(l.Target); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(l.Target); err != nil {
		t.Fatalf("second unmount: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), l.Target) {
		t.Fatal("still mounted")
	}
}
