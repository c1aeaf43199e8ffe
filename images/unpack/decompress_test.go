package unpack

import (
	"archive/tar"
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// sampleLayer has a bit of everything, one file spanning several reads.
func sampleLayer(t testing.TB) []byte { return sample(t, 5000) }

// smallLayer is sampleLayer with little content, for fuzz seeds.
func smallLayer(t testing.TB) []byte { return sample(t, 3) }

func sample(t testing.TB, shadowLines int) []byte {
	return buildTar(t,
		dir("./"),
		dir("etc/"),
		file("etc/hostname", "berth\n"),
		with(file("etc/shadow", strings.Repeat("secret\n", shadowLines)), func(h *tar.Header) { h.Mode = 0o640; h.Gid = 42 }),
		symlink("etc/mtab", "/proc/mounts"),
		hardlink("etc/hostname2", "etc/hostname"),
		ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "etc/fifo", Mode: 0o600, ModTime: testTime}},
		file("etc/.wh.motd", ""),
		dir("usr/"),
		file("usr/.wh..wh..opq", ""),
	)
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := stdgzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// describeTree renders every object under root, metadata included.
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		mtime := itoa(st.Mtim.Nano())
		if isWhiteoutDevice(&st) {
			mtime = "-" // whiteouts carry no times of their own
		}
		desc := []string{itoa(int64(st.Mode)), itoa(int64(st.Uid)), itoa(int64(st.Gid)), itoa(int64(st.Rdev)), mtime, xattrList(p), itoa(int64(st.Nlink))}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			desc = append(desc, sha256Hex(b))
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc = append(desc, target)
		}
		out[rel] = strings.Join(desc, " ")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func applyCompressed(t *testing.T, blob []byte) (string, int) {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(blob)}
	rc, err := Decompress(cr)
	if err != nil {
		t.Fatalf("Decompress: %v", err)
	}
	defer rc.Close()
	layer := filepath.Join(t.TempDir(), "layer")
	os.Mkdir(layer, 0o755)
	if _, err := Apply(layer, rc); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return layer, cr.n
}

func TestDecompress(t *testing.T) {
	plain := sampleLayer(t)
	want := describeTree(t, func() string { l, _ := applyCompressed(t, plain); return l }())
	if len(want) < 8 {
		t.Fatalf("sample layer too small: %v", want)
	}
	for name, blob := range map[string][]byte{
		"plain": plain,
		"gzip":  gzipped(t, plain),
		"zstd":  zstded(t, plain),
		// Concatenated streams are valid for both formats.
		"gzip multistream": concat(gzipped(t, plain[:1024]), gzipped(t, plain[1024:])),
		"zstd multiframe":  concat(zstded(t, plain[:1024]), zstded(t, plain[1024:])),
	} {
		t.Run(name, func(t *testing.T) {
			layer, consumed := applyCompressed(t, blob)
			if got := describeTree(t, layer); !reflect.DeepEqual(got, want) {
				t.Errorf("tree differs from the plain tar's:\ngot  %v\nwant %v", got, want)
			}
			if consumed != len(blob) {
				t.Errorf("consumed %d of %d compressed bytes", consumed, len(blob))
			}
		})
	}
}

func TestDecompressCorrupt(t *testing.T) {
	t.Run("gzip checksum", func(t *testing.T) {
		blob := gzipped(t, sampleLayer(t))
		blob[len(blob)-5] ^= 0xff // CRC32 in the trailer
		rc, err := Decompress(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := Apply(t.TempDir(), rc); err == nil {
			t.Error("Apply accepted a layer with a bad gzip checksum")
		}
	})
	t.Run("zstd truncated", func(t *testing.T) {
		blob := zstded(t, sampleLayer(t))
		rc, err := Decompress(bytes.NewReader(blob[:len(blob)/2]))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := Apply(t.TempDir(), rc); err == nil {
			t.Error("Apply accepted a truncated zstd layer")
		}
	})
	for name, magic := range map[string][]byte{"bzip2": []byte("BZh91AY&SY"), "xz": {0xfd, '7', 'z', 'X', 'Z', 0, 0, 4}} {
		t.Run(name, func(t *testing.T) {
			if _, err := Decompress(bytes.NewReader(magic)); err == nil {
				t.Error("Decompress accepted an unsupported compression")
			}
		})
	}
	t.Run("short input", func(t *testing.T) {
		rc, err := Decompress(bytes.NewReader([]byte{0x1f}))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		if !bytes.Equal(b, []byte{0x1f}) {
			t.Errorf("read %v", b)
		}
	})
}
