package e2e

import (
	"github.com/berth-runtime/berth/images"
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestTagMovesToNewImage re-pulls a tag after the registry moved it to a
// different image: the tag follows, the old image stays untagged and
// reachable by ID until removed.
func TestTagMovesToNewImage(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	old := reg.Image("busybox")
	other := reg.Image("other")

	if id := d.mustPull("busybox"); id != old.ConfigDigest {
		t.Fatalf("first pull answered %s", id)
	}
	if err := reg.PushAs("other", "library/busybox", "latest"); err != nil {
		t.Fatal(err)
	}
	if id := d.mustPull("busybox"); id != other.ConfigDigest {
		t.Fatalf("pull after the tag moved answered %s, want %s", id, other.ConfigDigest)
	}
	img := d.status("docker.io/library/busybox:latest")
	if img == nil || img.Id != other.ConfigDigest {
		t.Fatalf("the tag names %+v, want %s", img, other.ConfigDigest)
	}
	if !slices.Equal(img.RepoTags, []string{"docker.io/library/busybox:latest"}) {
		t.Errorf("new image tags %v", img.RepoTags)
	}
	if want := "docker.io/library/busybox@" + other.ManifestDigest; !slices.Contains(img.RepoDigests, want) {
		t.Errorf("new image digests %v lack %s", img.RepoDigests, want)
	}

	list := d.list()
	if len(list) != 2 {
		t.Fatalf("list has %d images, want the old and the new: %+v", len(list), list)
	}
	var oldImg *runtimeapi.Image
	for _, i := range list {
		if i.Id == old.ConfigDigest {
			oldImg = i
		}
	}
	if oldImg == nil {
		t.Fatalf("the old image is gone from the list: %+v", list)
	}
	if len(oldImg.RepoTags) != 0 {
		t.Errorf("the old image keeps tags %v", oldImg.RepoTags)
	}
	if want := "docker.io/library/busybox@" + old.ManifestDigest; !slices.Contains(oldImg.RepoDigests, want) {
		t.Errorf("the old image's digests %v lack %s", oldImg.RepoDigests, want)
	}
	if s := d.status(old.ConfigDigest); s == nil || s.Id != old.ConfigDigest {
		t.Fatalf("status by the old ID: %+v", s)
	}

	d.remove(old.ConfigDigest)
	if s := d.status(old.ConfigDigest); s != nil {
		t.Fatalf("the old image after removal by ID: %+v", s)
	}
	if got := d.list(); len(got) != 1 || got[0].Id != other.ConfigDigest {
		t.Fatalf("list after removing the old image: %+v", got)
	}
	// Only the new image's layer remains.
	wantLayer := images.ChainIDs(other.DiffIDs)[0][len("sha256:"):]
	if layers := dirNames(t, d.imagesDir("layers")); !slices.Equal(layers, []string{wantLayer}) {
		t.Errorf("layers %v, want only %s", layers, wantLayer)
	}
}

// TestTwoTagsOneImage pulls two tags whose manifests share a config (an OCI
// and a Docker flavour of the same image): one image, two tags, and
// removing one tag keeps the image under the other.
func TestTwoTagsOneImage(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	oci := reg.Image("busybox")
	docker := reg.Image("busybox-docker")
	if oci.ConfigDigest != docker.ConfigDigest {
		t.Fatalf("catalog: busybox and busybox-docker have different configs")
	}

	d.mustPull("busybox")
	if id := d.mustPull("busybox:docker"); id != oci.ConfigDigest {
		t.Fatalf("pull busybox:docker answered %s", id)
	}
	list := d.list()
	if len(list) != 1 {
		t.Fatalf("list has %d images, want 1: %+v", len(list), list)
	}
	tags := slices.Clone(list[0].RepoTags)
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"docker.io/library/busybox:docker", "docker.io/library/busybox:latest"}) {
		t.Fatalf("tags %v", list[0].RepoTags)
	}
	for _, md := range []string{oci.ManifestDigest, docker.ManifestDigest} {
		if want := "docker.io/library/busybox@" + md; !slices.Contains(list[0].RepoDigests, want) {
			t.Errorf("digests %v lack %s", list[0].RepoDigests, want)
		}
	}

	d.remove("busybox:docker")
	img := d.status(oci.ConfigDigest)
	if img == nil || !slices.Equal(img.RepoTags, []string{"docker.io/library/busybox:latest"}) {
		t.Fatalf("after removing one tag: %+v", img)
	}
	if s := d.status("busybox:docker"); s != nil {
		t.Errorf("the removed tag still resolves: %+v", s)
	}
	if layers := dirNames(t, d.imagesDir("layers")); len(layers) != 1 {
		t.Errorf("removing a tag changed the layers: %v", layers)
	}

	// Tag it twice again, then remove by ID: all tags go with the image.
	d.mustPull("busybox:docker")
	d.remove(oci.ConfigDigest)
	if got := d.list(); len(got) != 0 {
		t.Fatalf("list after removal by ID: %+v", got)
	}
	for _, n := range []string{"busybox", "busybox:docker"} {
		if s := d.status(n); s != nil {
			t.Errorf("%s resolves after removal by ID: %+v", n, s)
		}
	}
	if layers := dirNames(t, d.imagesDir("layers")); len(layers) != 0 {
		t.Errorf("layers after removal by ID: %v", layers)
	}
	if blobs := dirNames(t, d.imagesDir("blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("blobs after removal by ID: %v", blobs)
	}
}

func TestRemoveByRepoDigest(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	info := reg.Image("busybox")
	d.mustPull("busybox")
	byDigest := "docker.io/library/busybox@" + info.ManifestDigest

	if s := d.status(byDigest); s == nil || s.Id != info.ConfigDigest {
		t.Fatalf("status by repo digest: %+v", s)
	}
	d.remove(byDigest)
	if s := d.status(info.ConfigDigest); s != nil {
		t.Fatalf("image after removal by repo digest: %+v", s)
	}
	if got := d.list(); len(got) != 0 {
		t.Fatalf("list: %+v", got)
	}
}

func TestRemoveNeverPulled(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	d.mustPull("busybox")
	for _, n := range []string{
		"docker.io/library/never:pulled",
		"never",
		"busybox:other-tag",
		"docker.io/library/busybox@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	} {
		d.remove(n)
	}
	if got := d.list(); len(got) != 1 || got[0].Id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("removing names never pulled touched busybox: %+v", got)
	}
}

func TestListImagesFilter(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	busybox := reg.Image("busybox")
	user := reg.Image("user")
	d.mustPull("busybox")
	d.mustPull(dockerName(user))

	filter := func(name string) []*runtimeapi.Image {
		t.Helper()
		resp, err := d.img.ListImages(d.ctx(), &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: name}}})
		if err != nil {
			t.Fatalf("list with filter %q: %v", name, err)
		}
		return resp.Images
	}
	for _, f := range []string{"busybox", "docker.io/library/busybox:latest", busybox.ConfigDigest} {
		if got := filter(f); len(got) != 1 || got[0].Id != busybox.ConfigDigest {
			t.Errorf("filter %q: %+v, want only busybox", f, got)
		}
	}
	if got := filter("berth/user"); len(got) != 1 || got[0].Id != user.ConfigDigest {
		t.Errorf("filter berth/user: %+v", got)
	}
	if got := filter("nothing-here"); len(got) != 0 {
		t.Errorf("filter for an absent image: %+v", got)
	}
	if got := d.list(); len(got) != 2 {
		t.Errorf("list without filter: %d images, want 2", len(got))
	}
}
