package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-runtime/berth/test/testregistry"
)

func TestImportArchives(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	dir := t.TempDir()
	cases := []struct {
		write func(path, name, ref string) error
		name  string
		ref   string
	}{
		{testregistry.WriteDockerArchive, "user", "docker.io/library/imported:v1"},
		{testregistry.WriteOCIArchive, "multilayer", "docker.io/berth/oci:v2"},
		{testregistry.WriteOCIArchive, "multiarch", "docker.io/berth/oci-index:v3"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name+".tar")
		if err := c.write(path, c.name, c.ref); err != nil {
			t.Fatal(err)
		}
		imgs, err := s.ImportFile(context.Background(), path)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := reg.Image(c.name).ConfigDigest
		if len(imgs) != 1 || imgs[0].ID != want || !slices.Contains(imgs[0].RepoTags, c.ref) {
			t.Fatalf("%s: imported %+v, want %s as %s", c.name, imgs, want, c.ref)
		}
		for _, chain := range imgs[0].ChainIDs() {
			if !s.hasLayer(chain) {
				t.Fatalf("%s: layer %s missing", c.name, chain)
			}
		}
	}
	if reg.Requests() != 0 {
		t.Fatalf("an import fetched %d blobs from a registry", reg.Requests())
	}
}

func TestImportRefusesBadArchives(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	mk := func(entries map[string]string, link bool) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, body := range entries {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			tw.Write([]byte(body))
		}
		if link {
			tw.WriteHeader(&tar.Header{Name: "evil", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink})
		}
		tw.Close()
		return buf.Bytes()
	}
	cases := map[string][]byte{
		"not a tar":         []byte("hello"),
		"no index":          mk(map[string]string{"x": "y"}, false),
		"escaping name":     mk(map[string]string{"../x": "y"}, false),
		"symlink":           mk(map[string]string{"index.json": "{}"}, true),
		"bad manifest.json": mk(map[string]string{"manifest.json": "{"}, false),
		"missing layer":     mk(map[string]string{"manifest.json": `[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l.tar"]}]`, "c.json": "{}"}, false),
	}
	for name, data := range cases {
		_, err := s.Import(context.Background(), bytes.NewReader(data))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrBadContent) && name != "not a tar" {
			t.Errorf("%s: error has no kind: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(entries) != 0 {
		t.Fatalf("failed imports left %d entries in tmp", len(entries))
	}
	if len(s.List()) != 0 {
		t.Fatal("a failed import recorded an image")
	}
}
