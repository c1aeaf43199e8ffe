package e2e

import (
	"github.com/berth-runtime/berth/images"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestHostileLayersRefused pulls images whose layers try to write outside
// the layer directory, by a ../ name and through a symlink to /tmp. Each
// pull must fail naming the entry, write nothing outside the store, and
// leave no image and no partial layer behind.
func TestHostileLayersRefused(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	baseChain := strings.TrimPrefix(images.ChainIDs(reg.Image("busybox").DiffIDs)[0], "sha256:")

	// /tmp/pwned is what a naive extractor of hostile-symlink writes.
	pwnedBefore, pwnedErr := os.Lstat("/tmp/pwned")

	cases := []struct {
		name, entry string
	}{
		{"hostile", "../../escape"},
		{"hostile-symlink", "evil/pwned"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := reg.Image(c.name)
			_, err := d.pull(dockerName(info))
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("pull %s: %v (code %s), want FailedPrecondition", c.name, err, status.Code(err))
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, c.entry) {
				t.Errorf("pull %s: message %q does not name the entry %q", c.name, msg, c.entry)
			}
			if img := d.status(dockerName(info)); img != nil {
				t.Errorf("status after a refused pull: %+v", img)
			}
			if got := d.list(); len(got) != 0 {
				t.Errorf("list after a refused pull: %+v", got)
			}
			if names := dirNames(t, d.imagesDir("tmp")); len(names) != 0 {
				t.Errorf("tmp after a refused pull: %v", names)
			}
			// The base layer is valid and may have been stored; the hostile
			// one must not be, whole or in part.
			for _, l := range dirNames(t, d.imagesDir("layers")) {
				if l != baseChain {
					t.Errorf("layer dir %s stored by a refused pull", l)
				}
			}
		})
	}

	// Nothing named after the hostile entries exists anywhere in the test
	// directory (root, state, the dirs above the layers) ...
	filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.Name() == "escape" || e.Name() == "pwned" {
			t.Errorf("hostile layer wrote %s", p)
		}
		return nil
	})
	// ... nor right above it, where ../../escape from root/images/tmp/x/fs
	// or from the test dir's children would land.
	for _, p := range []string{filepath.Join(filepath.Dir(d.dir), "escape"), filepath.Join(d.root, "..", "escape"), filepath.Join(d.imagesDir(), "..", "escape")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after pulling hostile layers: %v", p, err)
		}
	}
	pwnedAfter, err := os.Lstat("/tmp/pwned")
	switch {
	case os.IsNotExist(pwnedErr) && !os.IsNotExist(err):
		t.Errorf("/tmp/pwned was written through the symlink: %v", err)
	case pwnedErr == nil && (err != nil || !pwnedAfter.ModTime().Equal(pwnedBefore.ModTime()) || pwnedAfter.Size() != pwnedBefore.Size()):
		t.Errorf("the existing /tmp/pwned was modified")
	}

	// The daemon is still healthy and pulls a good image.
	if id := d.mustPull("busybox"); id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("pull busybox after the hostile pulls answered %s", id)
	}
}
