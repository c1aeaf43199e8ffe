package images

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/berth-runtime/berth/pkg/config"
	"github.com/berth-runtime/berth/pkg/store"
	"github.com/berth-runtime/berth/test/testregistry"
)

// newTestService opens a store on a temp root whose docker.io endpoint is
// an in-process registry.
func newTestService(t *testing.T, reg *testregistry.Registry) *Service {
	t.Helper()
	root := t.TempDir()
	db, err := store.Open(filepath.Join(root, "berth.db"), Buckets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.Root = root
	cfg.Image.AuthFile = ""
	cfg.Registries = map[string]config.Registry{"docker.io": {Endpoint: reg.URL()}}
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := New(root, db, cfg, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startReg(t *testing.T) *testregistry.Registry {
	reg, err := testregistry.Start(testregistry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

func TestTagMovesToNewImage(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	ctx := context.Background()
	first, err := s.Pull(ctx, "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.PushAs("other", "library/busybox", "latest"); err != nil {
		t.Fatal(err)
	}
	second, err := s.Pull(ctx, "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || second.ID != reg.Image("other").ConfigDigest {
		t.Fatalf("second pull got %s", second.ID)
	}
	old := s.Get(first.ID)
	if old == nil || len(old.RepoTags) != 0 {
		t.Fatalf("old image should stay, untagged: %+v", old)
	}
	if got := s.Get("busybox"); got == nil || got.ID != second.ID {
		t.Fatalf("tag resolves to %+v", got)
	}
	// Both share the base layer; removing the old image must keep it.
	if err := s.Remove(first.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range second.ChainIDs() {
		if !s.hasLayer(c) {
			t.Fatalf("layer %s of the kept image was collected", c)
		}
	}
}

func TestRemoveOneOfSeveralTags(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	ctx := context.Background()
	a, err := s.Pull(ctx, "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(ctx, "busybox:docker", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Fatalf("same config, different IDs: %s %s", a.ID, b.ID)
	}
	if err := s.Remove("docker.io/library/busybox:docker"); err != nil {
		t.Fatal(err)
	}
	img := s.Get(a.ID)
	if img == nil || !slices.Equal(img.RepoTags, []string{"docker.io/library/busybox:latest"}) {
		t.Fatalf("after removing one tag: %+v", img)
	}
	if err := s.Remove("busybox"); err != nil {
		t.Fatal(err)
	}
	if s.Get(a.ID) != nil {
		t.Fatal("removing the last tag kept the image")
	}
	if n, _ := s.Usage(); n != 0 {
		t.Fatalf("%d bytes still counted after removing everything", n)
	}
	if err := s.Remove("busybox"); err != nil {
		t.Fatalf("removing a missing image: %v", err)
	}
}

func TestRecordsSurviveReopen(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	img, err := s.Pull(context.Background(), "berth/multilayer", nil)
	if err != nil {
		t.Fatal(err)
	}
	bytesBefore, inodesBefore := s.Usage()
	cfg := config.Default()
	cfg.Image.AuthFile = ""
	again, err := New(filepath.Dir(s.dir), s.db, cfg, s.log)
	if err != nil {
		t.Fatal(err)
	}
	got := again.Get("berth/multilayer")
	if got == nil || got.ID != img.ID || len(got.Layers) != 3 {
		t.Fatalf("after reopen: %+v", got)
	}
	if b, i := again.Usage(); b != bytesBefore || i != inodesBefore {
		t.Fatalf("usage after reopen %d/%d, before %d/%d", b, i, bytesBefore, inodesBefore)
	}
}

func TestConcurrentPullsShareDownloads(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	var wg sync.WaitGroup
	ids := make([]string, 4)
	errs := make([]error, 4)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := s.Pull(context.Background(), "berth/zstd", nil)
			errs[i] = err
			if err == nil {
				ids[i] = img.ID
			}
		}()
	}
	wg.Wait()
	want := reg.Image("zstd")
	for i := range ids {
		if errs[i] != nil || ids[i] != want.ConfigDigest {
			t.Fatalf("pull %d: %s %v", i, ids[i], errs[i])
		}
	}
	for _, d := range want.LayerDigests {
		if n := reg.BlobRequests(d); n != 1 {
			t.Fatalf("layer %s fetched %d times", d, n)
		}
	}
}

func TestTmpClearedAtStart(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	junk := filepath.Join(s.dir, "tmp", "layer-123", "fs")
	if err := os.MkdirAll(junk, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Image.AuthFile = ""
	if _, err := New(filepath.Dir(s.dir), s.db, cfg, s.log); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(entries) != 0 {
		t.Fatalf("tmp not cleared: %v", entries)
	}
}

func TestChainIDs(t *testing.T) {
	// Values from the OCI image spec's chain ID definition, computed by hand.
	d := []string{"sha256:a", "sha256:b"}
	got := ChainIDs(d)
	if got[0] != "sha256:a" || got[1] != digestOf([]byte("sha256:a sha256:b")) {
		t.Fatalf("chain IDs %v", got)
	}
}

// A container's layers outlive the removal of its image, and go when the
// container lets them go.
func TestHeldLayersOutliveTheirImage(t *testing.T) {
	reg := startReg(t)
	s := newTestService(t, reg)
	img, err := s.Pull(context.Background(), "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	chains := img.ChainIDs()
	release := s.Hold(chains...)
	if err := s.Remove(img.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if !s.hasLayer(c) {
			t.Fatalf("held layer %s collected with its image", c)
		}
	}
	s.Release(release, chains...)
	for _, c := range chains {
		if s.hasLayer(c) {
			t.Fatalf("layer %s kept after its last holder let go", c)
		}
	}
}
