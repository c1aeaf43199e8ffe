package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rawHeader builds a 512-byte header by hand, for what archive/tar's
// writer will not produce (old GNU sparse files, odd type flags, lying
// sizes). fields maps byte offsets to contents.
func rawHeader(typeflag byte, name string, size int64, gnu bool, fields map[int]string) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "14000000000\x00")
	b[156] = typeflag
	if gnu {
		copy(b[257:], "ustar  \x00")
	} else {
		copy(b[257:], "ustar\x0000")
	}
	for off, v := range fields {
		copy(b[off:], v)
	}
	copy(b[148:], "        ")
	var sum int
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

var endMarker = make([]byte, 1024)

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestUnknownTypesSkipped(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "hi"}}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	data := concat(
		buf.Bytes(),
		rawHeader('Z', "../../unknown-with-data", 5, false, nil), pad([]byte("hello")),
		rawHeader('V', "volume label", 0, true, nil),
		rawHeader('0', "kept", 2, false, nil), pad([]byte("ok")),
		endMarker,
	)
	layer, _, err := applyBytes(t, data)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	entries, _ := os.ReadDir(layer)
	if len(entries) != 1 || entries[0].Name() != "kept" {
		t.Errorf("layer holds %v, want only kept", entries)
	}
}

func TestTruncated(t *testing.T) {
	full := buildTar(t, dir("d/"), file("d/a", strings.Repeat("a", 3000)), file("d/b", "bbbb"))
	// Offsets: d/ header 0, d/a header 512, its data 1024..4096 (padded),
	// d/b header 4096, data 4608..5120, end marker 5120..6144.
	cases := map[string]int{
		"in a header":                  700,
		"in file data":                 2000,
		"in padding":                   4095,
		"at an entry boundary":         4096,
		"after the last entry's data":  5120,
		"empty":                        0,
		"before the end of data block": 4612,
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := applyBytes(t, full[:n])
			if err == nil {
				t.Fatal("Apply succeeded on a truncated layer")
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v does not wrap io.ErrUnexpectedEOF", err)
			}
		})
	}
	t.Run("single zero block accepted", func(t *testing.T) {
		if _, _, err := applyBytes(t, full[:5120+512]); err != nil {
			t.Fatal(err)
		}
	})
}

// countingReader records how much of the stream was consumed.
type countingReader struct {
	r   io.Reader
	n   int
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func TestReadsToEOF(t *testing.T) {
	data := concat(buildTar(t, file("f", "x")), make([]byte, 9000), []byte("trailing junk after the marker"))
	layer := filepath.Join(t.TempDir(), "layer")
	os.Mkdir(layer, 0o755)
	cr := &countingReader{r: bytes.NewReader(data)}
	if _, err := Apply(layer, cr); err != nil {
		t.Fatal(err)
	}
	if !cr.eof || cr.n != len(data) {
		t.Errorf("read %d of %d bytes (eof %v)", cr.n, len(data), cr.eof)
	}
}

func TestLongNames(t *testing.T) {
	t.Run("longer than PATH_MAX", func(t *testing.T) {
		name := strings.Repeat("a/", 2100) + "f"
		_, _, err := applyBytes(t, buildTar(t, file(name, "x")))
		if !errors.Is(err, unix.ENAMETOOLONG) {
			t.Fatalf("Apply error %v, want ENAMETOOLONG", err)
		}
	})
	t.Run("component longer than NAME_MAX", func(t *testing.T) {
		_, _, err := applyBytes(t, buildTar(t, file(strings.Repeat("x", 300), "x")))
		if !errors.Is(err, unix.ENAMETOOLONG) {
			t.Fatalf("Apply error %v, want ENAMETOOLONG", err)
		}
	})
	t.Run("long but valid", func(t *testing.T) {
		name := strings.Repeat("d/", 1000) + strings.Repeat("f", 255)
		layer, _ := mustApply(t, file(name, "deep"))
		b, err := os.ReadFile(filepath.Join(layer, name))
		if err != nil || string(b) != "deep" {
			t.Errorf("read %q, %v", b, err)
		}
	})
}

func TestHugeDeclaredSize(t *testing.T) {
	data := concat(rawHeader('0', "huge", 1<<40, false, nil), []byte("only a few bytes"))
	_, _, err := applyBytes(t, data)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Apply error %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestLargeFileStreams(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 3*copyBufSize/16+7)
	layer, res := mustApply(t, file("big", string(body)))
	got, err := os.ReadFile(filepath.Join(layer, "big"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("content mismatch (%d bytes, %v)", len(got), err)
	}
	if res.Bytes != int64(len(body)) || res.Inodes != 1 {
		t.Errorf("result %+v", res)
	}
}

// gnuSparse builds an old-GNU sparse entry: data "abc" at 0 and "hello"
// at 8192 in a 20000-byte file.
func gnuSparse(name string) []byte {
	hdr := rawHeader(tar.TypeGNUSparse, name, 8, true, map[int]string{
		386: fmt.Sprintf("%011o\x00%011o\x00", 0, 3),
		410: fmt.Sprintf("%011o\x00%011o\x00", 8192, 5),
		483: fmt.Sprintf("%011o\x00", 20000),
	})
	return concat(hdr, pad([]byte("abchello")))
}

func TestGNUSparse(t *testing.T) {
	layer, res, err := applyBytes(t, concat(gnuSparse("sparse"), endMarker))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 20000)
	copy(want, "abc")
	copy(want[8192:], "hello")
	got, err := os.ReadFile(filepath.Join(layer, "sparse"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("content mismatch: %d bytes, %v", len(got), err)
	}
	st := lstat(t, filepath.Join(layer, "sparse"))
	if st.Blocks*512 >= 20000 {
		t.Logf("no holes left (%d blocks); filesystem may not support them", st.Blocks)
	}
	if res.Bytes != 20000 {
		t.Errorf("result bytes %d, want 20000", res.Bytes)
	}
}

// paxHeader builds a raw PAX extended header ('x') with records, which
// archive/tar's writer would filter (it drops GNU.sparse.* keys).
func paxHeader(records ...string) []byte {
	var body []byte
	for i := 0; i < len(records); i += 2 {
		kv := " " + records[i] + "=" + records[i+1] + "\n"
		n := len(kv) + 1
		for len(fmt.Sprint(n))+len(kv) != n {
			n++
		}
		body = append(body, fmt.Sprint(n)+kv...)
	}
	return concat(rawHeader('x', "PaxHeaders/x", int64(len(body)), false, nil), pad(body))
}

func TestPAXSparse(t *testing.T) {
	sparseMap := pad([]byte("2\n0\n3\n8192\n5\n"))
	data := concat(
		paxHeader("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "dir/sparse", "GNU.sparse.realsize", "20000"),
		rawHeader('0', "dir/GNUSparseFile.0/sparse", int64(len(sparseMap)+8), false, nil),
		sparseMap, pad([]byte("abchello")),
		endMarker,
	)
	layer, _, err := applyBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 20000)
	copy(want, "abc")
	copy(want[8192:], "hello")
	got, err := os.ReadFile(filepath.Join(layer, "dir/sparse"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("content mismatch: %d bytes, %v", len(got), err)
	}
}

func TestSparseBudget(t *testing.T) {
	defer func(old int64) { maxSparseBytes = old }(maxSparseBytes)
	maxSparseBytes = 30000 // room for one 20000-byte sparse file, not two
	if _, _, err := applyBytes(t, concat(gnuSparse("a"), endMarker)); err != nil {
		t.Fatalf("one sparse file: %v", err)
	}
	_, _, err := applyBytes(t, concat(gnuSparse("a"), gnuSparse("b"), endMarker))
	if err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("Apply error %v, want the second sparse file refused", err)
	}
}

func TestUnknownSparseVersionRejected(t *testing.T) {
	data := concat(
		paxHeader("GNU.sparse.major", "9", "GNU.sparse.minor", "9"),
		rawHeader('0', "s", 4, false, nil), pad([]byte("data")),
		endMarker,
	)
	if _, _, err := applyBytes(t, data); err == nil {
		t.Fatal("Apply accepted an unknown sparse format")
	}
}

func TestReplacements(t *testing.T) {
	t.Run("directory replaced by file", func(t *testing.T) {
		layer, res := mustApply(t, dir("d/"), dir("d/sub/"), file("d/sub/f", "12345"), file("d", "now a file"))
		if b, _ := os.ReadFile(filepath.Join(layer, "d")); string(b) != "now a file" {
			t.Errorf("d = %q", b)
		}
		if res.Inodes != 1 || res.Bytes != 10 {
			t.Errorf("result %+v, want the replaced tree subtracted", res)
		}
	})
	t.Run("file replaced by directory", func(t *testing.T) {
		layer, _ := mustApply(t, file("d", "x"), dir("d/"), file("d/f", "y"))
		if b, _ := os.ReadFile(filepath.Join(layer, "d/f")); string(b) != "y" {
			t.Errorf("d/f = %q", b)
		}
	})
	t.Run("directory redeclared keeps children", func(t *testing.T) {
		layer, _ := mustApply(t, dir("d/"), file("d/f", "y"), with(dir("d/"), func(h *tar.Header) { h.Mode = 0o700 }))
		if b, _ := os.ReadFile(filepath.Join(layer, "d/f")); string(b) != "y" {
			t.Errorf("d/f = %q", b)
		}
		if st := lstat(t, filepath.Join(layer, "d")); st.Mode&0o777 != 0o700 {
			t.Errorf("mode %o", st.Mode&0o777)
		}
	})
	t.Run("symlink to directory replaced by directory", func(t *testing.T) {
		layer, _ := mustApply(t, dir("real/"), symlink("d", "real"), dir("d/"), file("d/f", "y"))
		if st := lstat(t, filepath.Join(layer, "d")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("d mode %o, want a directory", st.Mode)
		}
		if _, err := os.Lstat(filepath.Join(layer, "real/f")); !os.IsNotExist(err) {
			t.Errorf("real/f exists: %v", err)
		}
	})
	t.Run("writing through a symlink to a directory inside", func(t *testing.T) {
		layer, _ := mustApply(t, dir("real/"), symlink("d", "real"), file("d/f", "y"), symlink("abs", "/real"))
		if b, _ := os.ReadFile(filepath.Join(layer, "real/f")); string(b) != "y" {
			t.Errorf("real/f = %q", b)
		}
	})
	t.Run("file replaced repeatedly", func(t *testing.T) {
		layer, res := mustApply(t, file("f", "1"), file("f", "22"), symlink("f", "x"), file("f", "333"))
		if b, _ := os.ReadFile(filepath.Join(layer, "f")); string(b) != "333" {
			t.Errorf("f = %q", b)
		}
		if res.Inodes != 1 || res.Bytes != 3 {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("layer root must be a directory", func(t *testing.T) {
		if _, _, err := applyBytes(t, buildTar(t, file(".", "x"))); err == nil {
			t.Error("Apply accepted a file as the layer root")
		}
	})
	t.Run("file under a file", func(t *testing.T) {
		if _, _, err := applyBytes(t, buildTar(t, file("f", "x"), file("f/g", "y"))); !errors.Is(err, unix.ENOTDIR) {
			t.Errorf("Apply error %v, want ENOTDIR", err)
		}
	})
	t.Run("hardlink to missing target", func(t *testing.T) {
		if _, _, err := applyBytes(t, buildTar(t, hardlink("h", "missing"))); !errors.Is(err, unix.ENOENT) {
			t.Errorf("Apply error %v, want ENOENT", err)
		}
	})
}

func TestBadHeaders(t *testing.T) {
	cases := map[string]ent{
		"uid -1":           with(file("f", ""), func(h *tar.Header) { h.Uid = -1 }),
		"uid 2^32-1":       with(file("f", ""), func(h *tar.Header) { h.Uid = 1<<32 - 1 }),
		"gid too big":      with(file("f", ""), func(h *tar.Header) { h.Gid = 1 << 40 }),
		"major too big":    {hdr: tar.Header{Typeflag: tar.TypeChar, Name: "c", Devmajor: 0x1000}},
		"minor too big":    {hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "c", Devminor: 0x100000}},
		"empty symlink":    symlink("s", ""),
		"hardlink to root": hardlink("h", "./"),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := applyBytes(t, buildTar(t, e)); err == nil {
				t.Error("Apply succeeded")
			} else if !strings.Contains(err.Error(), e.hdr.Name) {
				t.Errorf("error %q does not name the entry", err)
			}
		})
	}
}

// TestInsecurePathSetting checks that archive/tar's own name check
// (GODEBUG=tarinsecurepath=0), which returns headers together with an
// error, neither aborts valid layers nor replaces our escape detection.
func TestInsecurePathSetting(t *testing.T) {
	t.Setenv("GODEBUG", "tarinsecurepath=0")
	if _, _, err := applyBytes(t, buildTar(t, dir("./"), file("./etc/x", "ok"))); err != nil {
		t.Fatalf("valid layer: %v", err)
	}
	_, _, err := applyBytes(t, buildTar(t, file("../x", "pwned")))
	if _, ok := asEscape(err); !ok {
		t.Fatalf("Apply error %v, want an EscapeError", err)
	}
}

func TestImplicitParents(t *testing.T) {
	layer, res := mustApply(t,
		with(dir("a/"), func(h *tar.Header) { h.Mode = 0o700 }),
		symlink("l", "a"),
		file("a/b/c/f", "1"),
		file("l/x/y", "2"), // through an in-layer symlink: lands in a/x
		file("a/b/c/g", "3"),
	)
	for name, want := range map[string]string{"a/b/c/f": "1", "a/x/y": "2", "a/b/c/g": "3"} {
		if b, err := os.ReadFile(filepath.Join(layer, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
	for _, d := range []string{"a/b", "a/b/c", "a/x"} {
		if st := lstat(t, filepath.Join(layer, d)); st.Mode&0o7777 != 0o755 || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%s: mode %o, want a 0755 directory", d, st.Mode)
		}
	}
	if st := lstat(t, filepath.Join(layer, "a")); st.Mode&0o7777 != 0o700 {
		t.Errorf("a: mode %o, want 700", st.Mode&0o7777)
	}
	if res.Inodes != 8 { // a l a/b a/b/c f a/x y g
		t.Errorf("result %+v, want 8 inodes", res)
	}
}
