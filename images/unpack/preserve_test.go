package unpack

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDeviceNodes(t *testing.T) {
	layer, _ := mustApply(t,
		dir("dev/"),
		ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime}},
		ent{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 0, ModTime: testTime}},
		ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/big", Mode: 0o600, Devmajor: 0xfff, Devminor: 0xfffff, ModTime: testTime}},
		ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "dev/fifo", Mode: 0o620, ModTime: testTime}},
	)
	cases := []struct {
		name         string
		kind, perm   uint32
		major, minor uint32
		gid          uint32
	}{
		{"dev/null", unix.S_IFCHR, 0o666, 1, 3, 0},
		{"dev/loop0", unix.S_IFBLK, 0o660, 7, 0, 6},
		{"dev/big", unix.S_IFCHR, 0o600, 0xfff, 0xfffff, 0},
		{"dev/fifo", unix.S_IFIFO, 0o620, 0, 0, 0},
	}
	for _, c := range cases {
		st := lstat(t, filepath.Join(layer, c.name))
		if st.Mode&unix.S_IFMT != c.kind || st.Mode&0o7777 != c.perm {
			t.Errorf("%s: mode %o, want type %o perm %o", c.name, st.Mode, c.kind, c.perm)
		}
		if c.kind != unix.S_IFIFO && (unix.Major(st.Rdev) != c.major || unix.Minor(st.Rdev) != c.minor) {
			t.Errorf("%s: device %d:%d, want %d:%d", c.name, unix.Major(st.Rdev), unix.Minor(st.Rdev), c.major, c.minor)
		}
		if st.Gid != c.gid {
			t.Errorf("%s: gid %d, want %d", c.name, st.Gid, c.gid)
		}
		if st.Mtim.Sec != testTime.Unix() {
			t.Errorf("%s: mtime %d, want %d", c.name, st.Mtim.Sec, testTime.Unix())
		}
	}
}

func TestModesAndOwners(t *testing.T) {
	layer, _ := mustApply(t,
		with(dir("bin/"), func(h *tar.Header) { h.Mode = 0o755 }),
		with(file("bin/su", "#!"), func(h *tar.Header) { h.Mode = 0o4755 }),
		with(file("bin/wall", "#!"), func(h *tar.Header) { h.Mode = 0o2755; h.Gid = 5 }),
		with(file("bin/owned", "x"), func(h *tar.Header) { h.Mode = 0o6750; h.Uid, h.Gid = 1234, 5678 }),
		with(dir("tmp/"), func(h *tar.Header) { h.Mode = 0o1777 }),
		with(dir("shared/"), func(h *tar.Header) { h.Mode = 0o2770; h.Uid, h.Gid = 1234, 5678 }),
		with(symlink("shared/link", "/etc/passwd"), func(h *tar.Header) { h.Uid, h.Gid = 1234, 5678 }),
		with(file("private", "x"), func(h *tar.Header) { h.Mode = 0o000 }),
	)
	cases := []struct {
		name     string
		perm     uint32
		uid, gid uint32
	}{
		{"bin/su", 0o4755, 0, 0},
		{"bin/wall", 0o2755, 0, 5},
		{"bin/owned", 0o6750, 1234, 5678},
		{"tmp", 0o1777, 0, 0},
		{"shared", 0o2770, 1234, 5678},
		{"private", 0, 0, 0},
	}
	for _, c := range cases {
		st := lstat(t, filepath.Join(layer, c.name))
		if st.Mode&0o7777 != c.perm || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: perm %o owner %d:%d, want %o %d:%d", c.name, st.Mode&0o7777, st.Uid, st.Gid, c.perm, c.uid, c.gid)
		}
	}
	st := lstat(t, filepath.Join(layer, "shared/link"))
	if st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("symlink owner %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
}

func TestTimes(t *testing.T) {
	dirTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	fileTime := time.Date(2011, 2, 3, 4, 5, 6, 123456789, time.UTC)
	linkTime := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	atime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	layer, _ := mustApply(t,
		with(dir("./"), func(h *tar.Header) { h.ModTime = dirTime }),
		with(dir("d/"), func(h *tar.Header) { h.ModTime = dirTime }),
		with(dir("d/sub/"), func(h *tar.Header) { h.ModTime = dirTime }),
		// Children written after their directories change its mtime.
		with(file("d/sub/f", "content"), func(h *tar.Header) { h.ModTime = fileTime; h.AccessTime = atime }),
		with(symlink("d/link", "/nowhere"), func(h *tar.Header) { h.ModTime = linkTime }),
		hardlink("d/sub/h", "d/sub/f"),
		file("d/.wh.gone", ""),
	)
	check := func(name string, wantM time.Time) *unix.Stat_t {
		t.Helper()
		st := lstat(t, filepath.Join(layer, name))
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(wantM) {
			t.Errorf("%s: mtime %v, want %v", name, got.UTC(), wantM)
		}
		return st
	}
	check(".", dirTime)
	check("d", dirTime)
	check("d/sub", dirTime)
	check("d/link", linkTime)
	// The hardlink header carries testTime and, as with other
	// runtimes, its metadata lands on the shared inode.
	st := check("d/sub/f", testTime)
	if got := time.Unix(st.Atim.Unix()); !got.Equal(testTime) {
		t.Errorf("atime %v, want %v", got, testTime)
	}

	layer2, _ := mustApply(t, with(file("f", "content"), func(h *tar.Header) { h.ModTime = fileTime; h.AccessTime = atime }))
	st = lstat(t, filepath.Join(layer2, "f"))
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(fileTime) {
		t.Errorf("mtime %v, want %v (nanoseconds kept)", got.UTC(), fileTime)
	}
	if got := time.Unix(st.Atim.Unix()); !got.Equal(atime) {
		t.Errorf("atime %v, want %v", got.UTC(), atime)
	}
}

// xattrsSupported skips the test when the test directory's filesystem
// lacks user xattrs.
func xattrsSupported(t *testing.T) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.probe", []byte("1"), 0); err == unix.ENOTSUP {
		t.Skip("filesystem without user xattrs")
	} else if err != nil {
		t.Fatal(err)
	}
}

func getxattr(t *testing.T, p, key string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, key, buf)
	if err != nil {
		t.Errorf("lgetxattr %s %s: %v", p, key, err)
		return ""
	}
	return string(buf[:n])
}

func TestXattrs(t *testing.T) {
	xattrsSupported(t)
	x := func(kv ...string) func(h *tar.Header) {
		return func(h *tar.Header) {
			h.PAXRecords = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				h.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
			}
		}
	}
	capability := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" // cap_net_bind_service, v2
	layer, _ := mustApply(t,
		with(dir("d/"), x("user.dir", "dv")),
		with(file("d/f", "x"), x("user.a", "1", "user.bin", "\x00\xff")),
		with(file("d/ping", "x"), func(h *tar.Header) { x("security.capability", capability)(h); h.Uid = 1234 }),
		with(symlink("d/link", "f"), x("user.nope", "1", "trusted.link", "t")),
		with(ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "d/fifo", Mode: 0o600}}, x("user.nope", "1")),
		with(file("d/overlay", "x"), x("trusted.overlay.redirect", "/etc", "trusted.overlay.opaque", "y", "user.ok", "1")),
	)
	if v := getxattr(t, filepath.Join(layer, "d"), "user.dir"); v != "dv" {
		t.Errorf("dir xattr %q", v)
	}
	if v := getxattr(t, filepath.Join(layer, "d/f"), "user.a"); v != "1" {
		t.Errorf("user.a %q", v)
	}
	if v := getxattr(t, filepath.Join(layer, "d/f"), "user.bin"); v != "\x00\xff" {
		t.Errorf("user.bin %q", v)
	}
	if v := getxattr(t, filepath.Join(layer, "d/ping"), "security.capability"); v != capability {
		t.Errorf("security.capability %q (must be set after chown)", v)
	}
	if v := getxattr(t, filepath.Join(layer, "d/link"), "trusted.link"); v != "t" {
		t.Errorf("symlink xattr %q", v)
	}
	if got := xattrList(filepath.Join(layer, "d/overlay")); got != "user.ok" {
		t.Errorf("overlay xattrs from the image were kept: %q", got)
	}
}

func TestHardlinksShareInode(t *testing.T) {
	layer, res := mustApply(t,
		dir("a/"),
		file("a/f", "data"),
		hardlink("a/g", "a/f"),
		hardlink("b/h", "./a/f"),
		hardlink("a/self", "a/self/../f"),
	)
	f := lstat(t, filepath.Join(layer, "a/f"))
	for _, n := range []string{"a/g", "b/h", "a/self"} {
		st := lstat(t, filepath.Join(layer, n))
		if st.Ino != f.Ino {
			t.Errorf("%s: inode %d, want %d", n, st.Ino, f.Ino)
		}
	}
	if f.Nlink != 4 {
		t.Errorf("nlink %d, want 4", f.Nlink)
	}
	if res.Inodes != 3 || res.Bytes != 4 { // a, a/f, implicit b
		t.Errorf("result %+v, want 3 inodes and 4 bytes", res)
	}
}

func TestSymlinkTargetsVerbatim(t *testing.T) {
	targets := map[string]string{
		"abs":      "/etc/passwd",
		"rel":      "../lib/x",
		"dotdot":   "../../../../../../etc/shadow",
		"dangling": "/does/not/exist",
		"dir":      "/",
	}
	var entries []ent
	for n, target := range targets {
		entries = append(entries, symlink(n, target))
	}
	layer, _ := mustApply(t, entries...)
	for n, want := range targets {
		got, err := os.Readlink(filepath.Join(layer, n))
		if err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", n, got, err, want)
		}
	}
}
