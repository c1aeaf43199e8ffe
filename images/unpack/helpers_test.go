package unpack

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry to build: a header and, for regular files, a body.
type ent struct {
	hdr  tar.Header
	body string
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func file(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func dir(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: testTime}}
}

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: testTime}}
}

func with(e ent, f func(h *tar.Header)) ent {
	f(&e.hdr)
	return e
}

// buildTar writes entries with archive/tar, end-of-archive marker included.
func buildTar(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if len(h.PAXRecords) > 0 || !h.AccessTime.IsZero() {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing header %q: %v", h.Name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// applyBytes extracts data into a fresh layer directory.
func applyBytes(t testing.TB, data []byte) (string, Result, error) {
	t.Helper()
	layer := filepath.Join(t.TempDir(), "layer")
	if err := os.Mkdir(layer, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Apply(layer, bytes.NewReader(data))
	return layer, res, err
}

func mustApply(t testing.TB, entries ...ent) (string, Result) {
	t.Helper()
	layer, res, err := applyBytes(t, buildTar(t, entries...))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return layer, res
}

func lstat(t testing.TB, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

// sandbox is a temp tree with the layer directory nested a few levels
// down and victims at every level, so an escape by "..", by an absolute
// path or through a symlink lands somewhere that is checked.
type sandbox struct {
	top   string // everything the test may touch is below top
	layer string
	// victim is a file next to the layer directory, victimDir a
	// directory next to it.
	victim, victimDir string
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	top := t.TempDir()
	deep := filepath.Join(top, "s1", "s2")
	s := &sandbox{
		top:       top,
		layer:     filepath.Join(deep, "layer"),
		victim:    filepath.Join(deep, "victim"),
		victimDir: filepath.Join(deep, "victimdir"),
	}
	for _, d := range []string{s.layer, s.victimDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{s.victim, filepath.Join(top, "victim"), filepath.Join(top, "s1", "victim"), filepath.Join(s.victimDir, "inner")} {
		if err := os.WriteFile(f, []byte("precious"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// snapshot describes every object under top outside the layer directory.
func (s *sandbox) snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(s.top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.layer {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		mtime := itoa(st.Mtim.Nano())
		if p == filepath.Dir(s.layer) {
			// Recreating the layer directory between fuzz runs touches
			// its parent's mtime; any entry added to or removed from the
			// parent still shows up as a path of its own.
			mtime = "-"
		}
		desc := []string{
			"rawmode=" + itoa(int64(st.Mode)),
			"uid=" + itoa(int64(st.Uid)), "gid=" + itoa(int64(st.Gid)),
			"nlink=" + itoa(int64(st.Nlink)),
			"mtime=" + mtime,
			"xattrs=" + xattrList(p),
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc = append(desc, "sha="+sha256Hex(b))
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, _ := os.Readlink(p)
			desc = append(desc, "target="+target)
		}
		out[p] = strings.Join(desc, " ")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *sandbox) assertUnchanged(t testing.TB, before map[string]string) {
	t.Helper()
	after := s.snapshot(t)
	var diffs []string
	for p, d := range after {
		if before[p] != d {
			diffs = append(diffs, p+": "+before[p]+" -> "+d)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			diffs = append(diffs, p+": removed")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("objects outside the layer changed:\n%s", strings.Join(diffs, "\n"))
	}
}

func xattrList(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return "err:" + err.Error()
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	return strings.Join(names, ",")
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func asEscape(err error) (*EscapeError, bool) {
	var esc *EscapeError
	ok := errors.As(err, &esc)
	return esc, ok
}
