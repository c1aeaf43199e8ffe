package unpack

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func opaqueValue(t *testing.T, p string) string {
	t.Helper()
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(p, opaqueXattr, buf)
	if err == unix.ENODATA {
		return ""
	}
	if err != nil {
		t.Fatalf("lgetxattr %s: %v", p, err)
	}
	return string(buf[:n])
}

func assertWhiteout(t *testing.T, p string, uid, gid uint32) {
	t.Helper()
	st := lstat(t, p)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("%s: mode %o rdev %d, want a 0/0 character device", p, st.Mode, st.Rdev)
	}
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
}

func assertAbsent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("%s exists (err %v), want absent", p, err)
	}
}

func TestWhiteouts(t *testing.T) {
	cases := []struct {
		name    string
		entries []ent
		check   func(t *testing.T, layer string)
	}{
		{
			name:    "file whiteout",
			entries: []ent{dir("etc/"), file("etc/.wh.passwd", "")},
			check: func(t *testing.T, l string) {
				assertWhiteout(t, filepath.Join(l, "etc/passwd"), 0, 0)
				assertAbsent(t, filepath.Join(l, "etc/.wh.passwd"))
			},
		},
		{
			name:    "top-level whiteout",
			entries: []ent{file(".wh.tmp", "")},
			check: func(t *testing.T, l string) {
				assertWhiteout(t, filepath.Join(l, "tmp"), 0, 0)
				assertAbsent(t, filepath.Join(l, ".wh.tmp"))
			},
		},
		{
			name:    "whiteout keeps its owner",
			entries: []ent{with(file("./.wh.x", ""), func(h *tar.Header) { h.Uid, h.Gid = 7, 8 })},
			check:   func(t *testing.T, l string) { assertWhiteout(t, filepath.Join(l, "x"), 7, 8) },
		},
		{
			name:    "whiteout in a directory not listed",
			entries: []ent{file("a/b/.wh.c", "")},
			check: func(t *testing.T, l string) {
				assertWhiteout(t, filepath.Join(l, "a/b/c"), 0, 0)
				if st := lstat(t, filepath.Join(l, "a/b")); st.Mode&0o7777 != 0o755 {
					t.Errorf("implicit directory mode %o, want 755", st.Mode&0o7777)
				}
			},
		},
		{
			name:    "whiteout of a directory name",
			entries: []ent{with(dir("./.wh.d/"), func(h *tar.Header) {})},
			check:   func(t *testing.T, l string) { assertWhiteout(t, filepath.Join(l, "d"), 0, 0) },
		},
		{
			name:    "opaque directory",
			entries: []ent{dir("usr/"), dir("usr/share/"), file("usr/share/.wh..wh..opq", ""), file("usr/share/new", "x")},
			check: func(t *testing.T, l string) {
				if v := opaqueValue(t, filepath.Join(l, "usr/share")); v != "y" {
					t.Errorf("opaque xattr = %q, want y", v)
				}
				if v := opaqueValue(t, filepath.Join(l, "usr")); v != "" {
					t.Errorf("parent got opaque xattr %q", v)
				}
				assertAbsent(t, filepath.Join(l, "usr/share/.wh..wh..opq"))
			},
		},
		{
			name:    "opaque marker before its directory",
			entries: []ent{file("a/.wh..wh..opq", ""), with(dir("a/"), func(h *tar.Header) { h.Mode = 0o700 })},
			check: func(t *testing.T, l string) {
				if v := opaqueValue(t, filepath.Join(l, "a")); v != "y" {
					t.Errorf("opaque xattr = %q, want y", v)
				}
				if st := lstat(t, filepath.Join(l, "a")); st.Mode&0o7777 != 0o700 {
					t.Errorf("mode %o, want 700", st.Mode&0o7777)
				}
			},
		},
		{
			name:    "opaque layer root",
			entries: []ent{file(".wh..wh..opq", "")},
			check: func(t *testing.T, l string) {
				if v := opaqueValue(t, l); v != "y" {
					t.Errorf("opaque xattr = %q, want y", v)
				}
			},
		},
		{
			name:    "other markers ignored",
			entries: []ent{dir("d/"), file("d/.wh..wh.plnk", ""), file("d/.wh..wh.aufs", "")},
			check: func(t *testing.T, l string) {
				entries, err := os.ReadDir(filepath.Join(l, "d"))
				if err != nil || len(entries) != 0 {
					t.Errorf("d has %v (err %v), want nothing", entries, err)
				}
				if v := opaqueValue(t, filepath.Join(l, "d")); v != "" {
					t.Errorf("opaque xattr %q on d", v)
				}
			},
		},
		{
			name:    "whiteout then directory of the same name becomes opaque",
			entries: []ent{file(".wh.d", ""), dir("d/"), file("d/f", "x")},
			check: func(t *testing.T, l string) {
				if st := lstat(t, filepath.Join(l, "d")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
					t.Fatalf("d is %o, want a directory", st.Mode)
				}
				if v := opaqueValue(t, filepath.Join(l, "d")); v != "y" {
					t.Errorf("opaque xattr = %q, want y", v)
				}
			},
		},
		{
			name:    "directory then whiteout of the same name becomes opaque",
			entries: []ent{dir("d/"), file("d/f", "x"), file(".wh.d", "")},
			check: func(t *testing.T, l string) {
				if _, err := os.Stat(filepath.Join(l, "d/f")); err != nil {
					t.Errorf("d/f: %v", err)
				}
				if v := opaqueValue(t, filepath.Join(l, "d")); v != "y" {
					t.Errorf("opaque xattr = %q, want y", v)
				}
			},
		},
		{
			name:    "whiteout then file of the same name",
			entries: []ent{file(".wh.f", ""), file("f", "new")},
			check: func(t *testing.T, l string) {
				if b, err := os.ReadFile(filepath.Join(l, "f")); err != nil || string(b) != "new" {
					t.Errorf("f = %q, %v", b, err)
				}
			},
		},
		{
			name:    "file then whiteout of the same name keeps the file",
			entries: []ent{file("f", "new"), file(".wh.f", "")},
			check: func(t *testing.T, l string) {
				if b, err := os.ReadFile(filepath.Join(l, "f")); err != nil || string(b) != "new" {
					t.Errorf("f = %q, %v", b, err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			layer, _ := mustApply(t, tc.entries...)
			tc.check(t, layer)
		})
	}
}

func TestInvalidWhiteouts(t *testing.T) {
	for _, name := range []string{".wh.", "d/.wh.", ".wh..", "d/.wh.."} {
		t.Run(name, func(t *testing.T) {
			_, _, err := applyBytes(t, buildTar(t, file(name, "")))
			if err == nil {
				t.Fatal("Apply succeeded, want an error")
			}
		})
	}
}
