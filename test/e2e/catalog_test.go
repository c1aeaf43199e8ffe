package e2e

import (
	"github.com/berth-runtime/berth/images"
	"os"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/testregistry"
)

// TestPullCatalog pulls every well-formed image of the test catalog the way
// kubelet names them (docker.io/<repo>:<tag>) and checks what the daemon
// recorded and unpacked for each. big is left to the tests that need its
// size; the hostile images are refused and have their own test.
func TestPullCatalog(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))

	skip := map[string]bool{"big": true, "hostile": true, "hostile-symlink": true}
	for _, name := range testregistry.Names() {
		if skip[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			info := reg.Image(name)
			ref := dockerName(info)
			id, err := d.pull(ref)
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			if id != info.ConfigDigest {
				t.Fatalf("pull %s answered %s, want the config digest %s", ref, id, info.ConfigDigest)
			}
			img := d.status(ref)
			if img == nil || img.Id != info.ConfigDigest {
				t.Fatalf("status %s: %+v", ref, img)
			}
			if !slices.Contains(img.RepoTags, ref) {
				t.Errorf("repo tags %v lack %s", img.RepoTags, ref)
			}
			// The repo digest is what the tag points to: the index for
			// multi-arch images, so the same digest pulls it again.
			if want := "docker.io/" + info.Repo + "@" + info.ManifestDigest; !slices.Contains(img.RepoDigests, want) {
				t.Errorf("repo digests %v lack %s", img.RepoDigests, want)
			}
			if img.Size != uint64(info.Size) {
				t.Errorf("size %d, want %d", img.Size, info.Size)
			}
			chains := images.ChainIDs(info.DiffIDs)
			for _, c := range chains {
				if _, err := os.Stat(d.imagesDir("layers", c[len("sha256:"):], "meta.json")); err != nil {
					t.Errorf("layer %s not stored: %v", c, err)
				}
			}
			top := chains[len(chains)-1]

			switch name {
			case "multiarch", "multiarch-docker":
				if info.ManifestDigest == info.ImageManifestDigest {
					t.Fatalf("catalog %s is not an index", name)
				}
				data, err := os.ReadFile(d.layerFS(top, "arch"))
				if err != nil {
					t.Fatalf("/arch of the chosen platform: %v", err)
				}
				want := map[string]string{"arm64": "arm64/v8\n", "arm": "arm/v7\n"}[runtime.GOARCH]
				if want == "" {
					want = runtime.GOARCH + "\n" // "amd64\n" on the usual test host
				}
				if string(data) != want {
					t.Errorf("/arch says %q, want the native %q", data, want)
				}
			case "multilayer":
				var st unix.Stat_t
				p := d.layerFS(chains[2], "data", "a.txt")
				if err := unix.Lstat(p, &st); err != nil {
					t.Fatalf("whiteout of /data/a.txt: %v", err)
				}
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
					t.Errorf("/data/a.txt in the third layer has mode %o rdev %d, want an overlay whiteout (char device 0/0)", st.Mode, st.Rdev)
				}
				buf := make([]byte, 16)
				n, err := unix.Lgetxattr(d.layerFS(chains[2], "opq"), "trusted.overlay.opaque", buf)
				if err != nil || string(buf[:n]) != "y" {
					t.Errorf("/opq in the third layer: trusted.overlay.opaque=%q (%v), want \"y\"", buf[:max(n, 0)], err)
				}
				if _, err := os.Lstat(d.layerFS(chains[2], "opq", ".wh..wh..opq")); !os.IsNotExist(err) {
					t.Errorf("the opaque marker was written as a file: %v", err)
				}
				if data, err := os.ReadFile(d.layerFS(chains[2], "opq", "new.txt")); err != nil || string(data) != "new\n" {
					t.Errorf("/opq/new.txt: %q %v", data, err)
				}
				if data, err := os.ReadFile(d.layerFS(chains[1], "data", "a.txt")); err != nil || string(data) != "a\n" {
					t.Errorf("the second layer lost /data/a.txt: %q %v", data, err)
				}
			case "user":
				if img.Uid == nil || img.Uid.Value != 1000 || img.Username != "" {
					t.Errorf("user image: uid %v username %q, want uid 1000", img.Uid, img.Username)
				}
			case "username":
				if img.Uid != nil || img.Username != "berth" {
					t.Errorf("username image: uid %v username %q, want username berth", img.Uid, img.Username)
				}
			case "zstd":
				if data, err := os.ReadFile(d.layerFS(top, "zstd", "hello.txt")); err != nil || string(data) != "compressed with zstd\n" {
					t.Errorf("zstd layer: /zstd/hello.txt %q %v", data, err)
				}
				if fi, err := os.Stat(d.layerFS(chains[0], "bin", "busybox")); err != nil || fi.Size() == 0 {
					t.Errorf("zstd base layer: /bin/busybox %v", err)
				}
			case "uncompressed":
				if fi, err := os.Stat(d.layerFS(top, "bin", "busybox")); err != nil || fi.Mode()&0o111 == 0 {
					t.Errorf("uncompressed layer: /bin/busybox %v", err)
				}
			case "busybox", "busybox-docker", "other":
				if img.Uid != nil || img.Username != "" {
					t.Errorf("root image: uid %v username %q, want neither", img.Uid, img.Username)
				}
				want := "tag: latest\n"
				if name == "other" {
					want = "tag: other\n"
				}
				if data, err := os.ReadFile(d.layerFS(top, "etc", "motd")); err != nil || string(data) != want {
					t.Errorf("/etc/motd: %q %v, want %q", data, err, want)
				}
			}
		})
	}

	// busybox and busybox-docker have the same config, so they are one
	// image under two tags; everything else is its own image.
	wantIDs := map[string]bool{}
	for _, name := range testregistry.Names() {
		if !skip[name] {
			wantIDs[reg.Image(name).ConfigDigest] = true
		}
	}
	if got := d.list(); len(got) != len(wantIDs) {
		t.Errorf("list has %d images, want %d", len(got), len(wantIDs))
	}
}
