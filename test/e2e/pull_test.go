package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPullListInspectRemove(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	want := reg.Image("busybox")

	id := d.mustPull("busybox")
	if id != want.ConfigDigest {
		t.Fatalf("pull answered %s, want the config digest %s", id, want.ConfigDigest)
	}
	img := d.status("docker.io/library/busybox:latest")
	if img == nil || img.Id != id {
		t.Fatalf("status by full name: %+v", img)
	}
	if !slices.Contains(img.RepoTags, "docker.io/library/busybox:latest") {
		t.Fatalf("repo tags %v", img.RepoTags)
	}
	if !slices.Contains(img.RepoDigests, "docker.io/library/busybox@"+want.ManifestDigest) {
		t.Fatalf("repo digests %v, want the manifest digest %s", img.RepoDigests, want.ManifestDigest)
	}
	if img.Size != uint64(want.Size) {
		t.Fatalf("size %d, want %d", img.Size, want.Size)
	}
	if got := d.list(); len(got) != 1 || got[0].Id != id {
		t.Fatalf("list: %+v", got)
	}
	layers, _ := os.ReadDir(filepath.Join(d.root, "images", "layers"))
	if len(layers) != len(want.DiffIDs) {
		t.Fatalf("%d layer dirs, want %d", len(layers), len(want.DiffIDs))
	}
	if _, err := os.Stat(filepath.Join(d.root, "images", "layers", layers[0].Name(), "fs", "bin", "busybox")); err != nil {
		t.Fatalf("layer not unpacked: %v", err)
	}

	d.remove("busybox")
	if img := d.status("busybox"); img != nil {
		t.Fatalf("status after remove: %+v", img)
	}
	if layers, _ := os.ReadDir(filepath.Join(d.root, "images", "layers")); len(layers) != 0 {
		t.Fatalf("layers left after remove: %v", layers)
	}
	if blobs, _ := os.ReadDir(filepath.Join(d.root, "images", "blobs", "sha256")); len(blobs) != 0 {
		t.Fatalf("blobs left after remove: %d", len(blobs))
	}
	d.remove("busybox") // idempotent
	if got := d.mustPull("busybox"); got != id {
		t.Fatalf("pull again: %s", got)
	}
}
