package unpack

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fuzzCanary is an absolute path the seeds aim symlinks at. If an escape
// through an absolute symlink ever worked, it would appear on the host.
const fuzzCanary = "/berth-unpack-fuzz-canary"

// fuzzSeeds are layers covering every code path: normal content,
// whiteouts, replacements, and the escape attempts of the hostile suite
// (relative ones land in the sandbox, absolute ones at fuzzCanary).
func fuzzSeeds(tb testing.TB) [][]byte {
	xattr := func(h *tar.Header) { h.PAXRecords = map[string]string{"SCHILY.xattr.user.k": "v"} }
	return [][]byte{
		smallLayer(tb),
		buildTar(tb, dir("a/"), file("a/.wh.b", ""), file("a/.wh..wh..opq", ""), file(".wh.c", ""), dir("c/")),
		buildTar(tb, dir("d/"), file("d/f", "x"), file("d", "y"), dir("d/"), symlink("d/l", "../d"), hardlink("d/h", "d/l")),
		buildTar(tb, with(file("f", "x"), xattr), with(dir("x/"), func(h *tar.Header) { h.Mode = 0o7777; h.Uid = 1234 })),
		buildTar(tb, file("../victim", "pwned")),
		buildTar(tb, file(fuzzCanary+"/x", "pwned")),
		buildTar(tb, symlink("link", "../victimdir"), file("link/inner", "pwned")),
		buildTar(tb, symlink("link", fuzzCanary), file("link/x", "pwned")),
		buildTar(tb, symlink("link", "../victim"), file("link", "replaced")),
		buildTar(tb, symlink("link", ".."), hardlink("h", "link/victim")),
		buildTar(tb, hardlink("h", "../victim")),
		buildTar(tb, dir("d/"), symlink("d/up", "../.."), symlink("in", "d"), file("in/up/victim", "pwned")),
		buildTar(tb, symlink("link", "../victimdir"), file("link/.wh..wh..opq", ""), file("link/.wh.inner", "")),
		concat(gnuSparse("sparse"), endMarker),
		buildTar(tb, ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}}, ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p"}}),
	}
}

func FuzzApply(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	// Keep each run short: a mutated sparse header can declare terabytes
	// of holes, which Apply would spend seconds producing before the
	// default budget stops it.
	defer func(old int64) { maxSparseBytes = old }(maxSparseBytes)
	maxSparseBytes = 64 << 20

	// One sandbox per fuzzing process, its layer directory emptied after
	// every run: building a fresh tree each time would dominate the run.
	s := newSandbox(f)
	before := s.snapshot(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func() {
			if err := os.RemoveAll(s.layer); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(s.layer, 0o755); err != nil {
				t.Fatal(err)
			}
		}()
		res, err := Apply(s.layer, bytes.NewReader(data))

		// Nothing outside the layer directory changed.
		s.assertUnchanged(t, before)
		if _, statErr := os.Lstat(fuzzCanary); statErr == nil {
			t.Fatalf("%s was created outside the layer", fuzzCanary)
		}
		// Error messages quote entry names: they may hold any byte.
		if esc, ok := asEscape(err); ok && !strings.Contains(err.Error(), strconv.Quote(esc.Entry)) {
			t.Errorf("escape error %q does not name entry %q", err, esc.Entry)
		}
		if err != nil {
			return
		}
		// On success the reported usage matches what is on disk.
		if got := measure(t, s.layer); got != res {
			t.Errorf("Apply reported %+v, disk holds %+v", res, got)
		}
	})
}

// measure counts the distinct inodes under root (root excluded) and the
// sizes of the distinct regular files.
func measure(t *testing.T, root string) Result {
	t.Helper()
	var r Result
	seen := map[uint64]bool{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		r.Inodes++
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			r.Bytes += st.Size
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestResultMatchesDisk checks the usage accounting on the fuzz seeds.
func TestResultMatchesDisk(t *testing.T) {
	for i, seed := range fuzzSeeds(t) {
		layer, res, err := applyBytes(t, seed)
		if err != nil {
			continue
		}
		if got := measure(t, layer); got != res {
			t.Errorf("seed %d: Apply reported %+v, disk holds %+v", i, res, got)
		}
	}
}
