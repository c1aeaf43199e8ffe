package testregistry

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func start(t *testing.T, opts Options) *Registry {
	t.Helper()
	if testing.Verbose() && opts.Logf == nil {
		opts.Logf = t.Logf
	}
	r, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var nativePlat = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}

func pull(t *testing.T, ref string, opts ...remote.Option) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, append(opts, remote.WithPlatform(nativePlat))...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// tarEntries lists the headers of a layer's uncompressed tar stream, and the
// content of its regular files.
func tarEntries(t *testing.T, l v1.Layer) ([]*tar.Header, map[string]string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var hdrs []*tar.Header
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(b)
		}
	}
	return hdrs, files
}

func TestBuildTime(t *testing.T) {
	t0 := time.Now()
	if _, err := loadCatalog(); err != nil {
		t.Fatal(err)
	}
	built := time.Since(t0)
	t1 := time.Now()
	r := start(t, Options{Logf: func(string, ...any) {}})
	t.Logf("catalog built in %s (0 if another test built it first), registry started and filled in %s at %s",
		built.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond), r.Addr())
}

// TestDeterministic builds the catalog twice from scratch and compares every
// digest, then checks the layers that do not contain busybox against digests
// recorded once: they depend only on this package's code.
func TestDeterministic(t *testing.T) {
	a, err := buildCatalog()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.entries) != len(catalogSpecs) {
		t.Fatalf("built %d images, want %d", len(a.entries), len(catalogSpecs))
	}
	for _, n := range Names() {
		if !reflect.DeepEqual(a.entries[n].info, b.entries[n].info) {
			t.Errorf("%s differs between builds:\n%+v\n%+v", n, a.entries[n].info, b.entries[n].info)
		}
	}
	if len(a.blobs) != len(b.blobs) {
		t.Errorf("blob counts differ: %d vs %d", len(a.blobs), len(b.blobs))
	}
	for d, blob := range a.blobs {
		if !bytes.Equal(blob, b.blobs[d]) {
			t.Errorf("blob %s differs between builds", d)
		}
	}

	golden := map[string]map[int]string{
		"multilayer": {
			1: "sha256:ad76c5e2a5a8fcfd5237f1b11c31038fe3060b1f46a3f6e4eac73139d2263cf8",
			2: "sha256:ea594a36dd40aeaa98e8c4a27060ae9535ceff4f22e49534ab23cb7b88c04d39",
		},
		"big": {
			1: "sha256:3d55d3fdd2d5a9b7ccc2870673d61db70c0e08fd5bc168041f48207261bc671f",
			2: "sha256:b19b13b29c21b45f7d787380958f3c0ba268ebfcbed5b5d79816fae64d4638e1",
			3: "sha256:73e0d8034847a90a990f7695dd962635673daa07e1d08b5856150e81e7974f05",
			4: "sha256:7219a2e74a1c5756e976d7ab2ee4bc45602ad40c9455efe2e161fdff229c6bf4",
		},
		"hostile":         {1: "sha256:ed3d5b4ce43cd65c4745d8e8e4192a00886d987b6d8f3e6efcc62bb19421a070"},
		"hostile-symlink": {1: "sha256:84262e27ce86aeddbb67d1210cf8ba287cd5287426cc0b5ceff573cc0e0855f7"},
		"zstd":            {1: "sha256:863ca2f149d566ae5d11907be3bbed25084f5a093d1664ac07b6ec7724c55b6f"},
	}
	for n, want := range golden {
		for i, d := range want {
			if got := a.entries[n].info.DiffIDs[i]; got != d {
				t.Errorf("%s layer %d diffID = %s, want %s", n, i, got, d)
			}
		}
	}

	// Identical content shares blobs: the Docker flavour of busybox has the
	// same layer and config (image ID) but its own manifest.
	bb, bd := a.entries["busybox"].info, a.entries["busybox-docker"].info
	if bb.ConfigDigest != bd.ConfigDigest || bb.LayerDigests[0] != bd.LayerDigests[0] || bb.ManifestDigest == bd.ManifestDigest {
		t.Errorf("busybox vs busybox-docker: %+v vs %+v", bb, bd)
	}
}

// TestPullAll pulls every image anonymously over HTTP and checks it against
// the catalog's info, including every blob's digest (ggcr's validate reads
// and hashes all of them).
func TestPullAll(t *testing.T) {
	r := start(t, Options{})
	for _, n := range Names() {
		t.Run(n, func(t *testing.T) {
			info := r.Image(n)
			ref, err := name.ParseReference(r.Ref(n))
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(ref)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != info.ManifestDigest || string(desc.MediaType) != info.MediaType {
				t.Errorf("tag resolves to %s %s, want %s %s", desc.Digest, desc.MediaType, info.ManifestDigest, info.MediaType)
			}
			img := pull(t, r.Ref(n))
			cfgName, _ := img.ConfigName()
			if cfgName.String() != info.ConfigDigest {
				t.Errorf("config digest %s, want %s", cfgName, info.ConfigDigest)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Layers) != len(info.LayerDigests) {
				t.Fatalf("%d layers, want %d", len(m.Layers), len(info.LayerDigests))
			}
			docker := strings.HasSuffix(n, "-docker")
			wantManifest, wantConfig := types.OCIManifestSchema1, types.OCIConfigJSON
			if docker {
				wantManifest, wantConfig = types.DockerManifestSchema2, types.DockerConfigJSON
			}
			if m.MediaType != wantManifest || m.Config.MediaType != wantConfig {
				t.Errorf("media types %s / %s, want %s / %s", m.MediaType, m.Config.MediaType, wantManifest, wantConfig)
			}
			var size int64
			raw, _ := img.RawManifest()
			size = int64(len(raw)) + m.Config.Size
			for i, l := range m.Layers {
				size += l.Size
				if l.Digest.String() != info.LayerDigests[i] || string(l.MediaType) != info.LayerMediaTypes[i] {
					t.Errorf("layer %d = %s %s, want %s %s", i, l.Digest, l.MediaType, info.LayerDigests[i], info.LayerMediaTypes[i])
				}
				want := types.OCILayer
				switch {
				case docker:
					want = types.DockerLayer
				case n == "zstd":
					want = types.OCILayerZStd
				case n == "uncompressed":
					want = types.OCIUncompressedLayer
				}
				if l.MediaType != want {
					t.Errorf("layer %d media type %s, want %s", i, l.MediaType, want)
				}
			}
			if size != info.Size {
				t.Errorf("size %d, want %d", size, info.Size)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			wantCmd := []string{"sh"}
			if n == "pause" {
				wantCmd = pauseCmd
			}
			if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || cf.Config.User != info.User ||
				!reflect.DeepEqual(cf.Config.Cmd, wantCmd) || !reflect.DeepEqual(cf.Config.Env, defaultEnv) {
				t.Errorf("config %+v", cf)
			}
			if err := verifyImage(img); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}

	users := map[string]string{"user": "1000:1000", "username": "berth", "busybox": ""}
	for n, u := range users {
		if got := r.Image(n).User; got != u {
			t.Errorf("%s user %q, want %q", n, got, u)
		}
	}
}

func TestBaseRootfs(t *testing.T) {
	r := start(t, Options{Images: []string{"busybox"}})
	img := pull(t, r.Ref("busybox"))
	layers, _ := img.Layers()
	hdrs, files := tarEntries(t, layers[0])
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		byName[h.Name] = h
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s mtime %s", h.Name, h.ModTime)
		}
	}
	bb, err := readBusybox()
	if err != nil {
		t.Fatal(err)
	}
	if files["bin/busybox"] != string(bb) || byName["bin/busybox"].Mode != 0o755 {
		t.Errorf("bin/busybox is not the host's busybox")
	}
	for _, a := range []string{"sh", "ls", "cat", "echo", "sleep", "id", "top", "wget", "nc", "true", "false", "env"} {
		if h := byName["bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v", a, h)
		}
	}
	if h := byName["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/: %+v", h)
	}
	if h := byName["home/berth/"]; h == nil || h.Uid != 1000 || h.Gid != 1000 {
		t.Errorf("home/berth/: %+v", h)
	}
	for _, d := range []string{"root/", "home/", "etc/"} {
		if byName[d] == nil {
			t.Errorf("missing %s", d)
		}
	}
	if !strings.Contains(files["etc/passwd"], "berth:x:1000:1000:") || !strings.Contains(files["etc/passwd"], "nobody:x:65534:65534:") {
		t.Errorf("passwd: %q", files["etc/passwd"])
	}
	if !strings.Contains(files["etc/group"], "extra:x:1001:berth") {
		t.Errorf("group: %q", files["etc/group"])
	}
	if files["etc/motd"] != "tag: latest\n" {
		t.Errorf("motd %q", files["etc/motd"])
	}
}

func TestMultiarch(t *testing.T) {
	r := start(t, Options{Images: []string{"multiarch", "multiarch-docker"}})
	for _, n := range []string{"multiarch", "multiarch-docker"} {
		t.Run(n, func(t *testing.T) {
			info := r.Image(n)
			ref, _ := name.ParseReference(r.Ref(n))
			idx, err := remote.Index(ref)
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			wantIdx, wantChild := types.OCIImageIndex, types.OCIManifestSchema1
			if n == "multiarch-docker" {
				wantIdx, wantChild = types.DockerManifestList, types.DockerManifestSchema2
			}
			if im.MediaType != wantIdx {
				t.Errorf("index media type %s, want %s", im.MediaType, wantIdx)
			}
			var plats []string
			for _, d := range im.Manifests {
				plats = append(plats, d.Platform.String())
				if d.MediaType != wantChild || d.ArtifactType != "" {
					t.Errorf("%s media type %s, artifactType %q", d.Platform, d.MediaType, d.ArtifactType)
				}
				child, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				cf, err := child.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != d.Platform.Architecture || cf.Variant != d.Platform.Variant {
					t.Errorf("%s config says %s/%s", d.Platform, cf.Architecture, cf.Variant)
				}
			}
			want := []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7"}
			if !reflect.DeepEqual(plats[:3], want) || !reflect.DeepEqual(info.Platforms, plats) {
				t.Errorf("platforms %v (info %v), want %v", plats, info.Platforms, want)
			}

			img := pull(t, r.Ref(n))
			d, _ := img.Digest()
			c, _ := img.ConfigName()
			if d.String() != info.ImageManifestDigest || c.String() != info.ConfigDigest {
				t.Errorf("native image %s config %s, want %s %s", d, c, info.ImageManifestDigest, info.ConfigDigest)
			}
			layers, _ := img.Layers()
			_, files := tarEntries(t, layers[len(layers)-1])
			if files["arch"] != nativePlatform().arch+"\n" && !strings.HasPrefix(files["arch"], runtime.GOARCH+"/") {
				t.Errorf("/arch = %q", files["arch"])
			}
			if len(layers) != 2 {
				t.Errorf("native image has %d layers, want busybox + marker", len(layers))
			}
		})
	}
}

func TestMultilayer(t *testing.T) {
	r := start(t, Options{Images: []string{"multilayer"}})
	img := pull(t, r.Ref("multilayer"))
	layers, _ := img.Layers()
	if len(layers) != 3 {
		t.Fatalf("%d layers", len(layers))
	}
	hdrs, _ := tarEntries(t, layers[2])
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
	}
	if want := []string{"data/", "data/.wh.a.txt", "opq/", "opq/.wh..wh..opq", "opq/new.txt"}; !reflect.DeepEqual(names, want) {
		t.Errorf("layer 3 entries %v, want %v", names, want)
	}

	// ggcr's flattening applies whiteouts and opaque markers the way the
	// runtime must.
	tr := tar.NewReader(mutate.Extract(img))
	final := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		final[strings.TrimSuffix(h.Name, "/")] = string(b)
	}
	if final["data/b.txt"] != "b\n" || final["opq/new.txt"] != "new\n" {
		t.Errorf("missing files: %v", final)
	}
	for _, gone := range []string{"data/a.txt", "opq/x.txt", "opq/sub", "opq/sub/y.txt", "data/.wh.a.txt", "opq/.wh..wh..opq"} {
		if _, ok := final[gone]; ok {
			t.Errorf("%s should not be in the final view", gone)
		}
	}
	if _, ok := final["bin/busybox"]; !ok {
		t.Errorf("base layer missing from the final view")
	}
}

func TestHostile(t *testing.T) {
	r := start(t, Options{Images: []string{"hostile", "hostile-symlink"}})

	img := pull(t, r.Ref("hostile"))
	layers, _ := img.Layers()
	hdrs, _ := tarEntries(t, layers[len(layers)-1])
	if len(hdrs) != 1 || hdrs[0].Name != "../../escape" || hdrs[0].Typeflag != tar.TypeReg {
		t.Errorf("hostile layer entries: %+v", hdrs)
	}
	mt, _ := layers[len(layers)-1].MediaType()
	if mt != types.OCILayer {
		t.Errorf("hostile layer media type %s", mt)
	}

	img = pull(t, r.Ref("hostile-symlink"))
	layers, _ = img.Layers()
	hdrs, _ = tarEntries(t, layers[len(layers)-1])
	if len(hdrs) != 2 ||
		hdrs[0].Name != "evil" || hdrs[0].Typeflag != tar.TypeSymlink || hdrs[0].Linkname != "/tmp" ||
		hdrs[1].Name != "evil/pwned" || hdrs[1].Typeflag != tar.TypeReg {
		t.Errorf("hostile-symlink layer entries: %+v", hdrs)
	}
}

func TestZstdAndUncompressed(t *testing.T) {
	r := start(t, Options{Images: []string{"zstd", "uncompressed", "busybox"}})
	img := pull(t, r.Ref("zstd"))
	layers, _ := img.Layers()
	if len(layers) != 2 {
		t.Fatalf("%d layers", len(layers))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
			t.Errorf("layer %d is not a zstd frame", i)
		}
	}
	_, files := tarEntries(t, layers[1])
	if files["zstd/hello.txt"] != "compressed with zstd\n" {
		t.Errorf("zstd layer files %v", files)
	}
	// Same rootfs as busybox, so the same diffID under another digest.
	if r.Image("zstd").DiffIDs[0] != r.Image("busybox").DiffIDs[0] || r.Image("zstd").LayerDigests[0] == r.Image("busybox").LayerDigests[0] {
		t.Errorf("zstd base layer: %+v", r.Image("zstd"))
	}

	u := r.Image("uncompressed")
	if u.LayerDigests[0] != u.DiffIDs[0] || u.DiffIDs[0] != r.Image("busybox").DiffIDs[0] {
		t.Errorf("uncompressed layer digest %s diffID %s", u.LayerDigests[0], u.DiffIDs[0])
	}
}

func TestBig(t *testing.T) {
	info, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	b := info["big"]
	if len(b.LayerDigests) != 5 || b.Size < 48<<20 || b.Size > 56<<20 {
		t.Errorf("big: %d layers, %d bytes", len(b.LayerDigests), b.Size)
	}
}

// verifyImage reads every blob of img and checks it against the digests the
// manifest and config declare.
func verifyImage(img v1.Image) error {
	raw, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(raw)); h != m.Config.Digest || int64(len(raw)) != m.Config.Size {
		return fmt.Errorf("config is %s (%d bytes), manifest says %s (%d)", h, len(raw), m.Config.Digest, m.Config.Size)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(m.Layers) || len(layers) != len(cf.RootFS.DiffIDs) {
		return fmt.Errorf("%d layers, %d in manifest, %d diffIDs", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want v1.Hash
			size int64
		}{{l.Compressed, m.Layers[i].Digest, m.Layers[i].Size}, {l.Uncompressed, cf.RootFS.DiffIDs[i], -1}} {
			rc, err := c.open()
			if err != nil {
				return err
			}
			h, n, err := v1.SHA256(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			if h != c.want || (c.size >= 0 && n != c.size) {
				return fmt.Errorf("layer %d: read %s (%d bytes), want %s", i, h, n, c.want)
			}
		}
	}
	return nil
}

func isStatus(err error, code int) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == code
}

func TestBasicAuth(t *testing.T) {
	creds := &Credentials{"alice", "s3cret"}
	r := start(t, Options{BasicAuth: creds, Images: []string{"busybox"}})
	ref, _ := name.ParseReference(r.Ref("busybox"))

	if _, err := remote.Image(ref); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("anonymous pull: %v, want 401", err)
	}
	if _, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "alice", Password: "wrong"})); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("wrong password: %v, want 401", err)
	}
	img := pull(t, r.Ref("busybox"), remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	if c, _ := img.ConfigName(); c.String() != r.Image("busybox").ConfigDigest {
		t.Errorf("config %s", c)
	}
	if err := verifyImage(img); err != nil {
		t.Error(err)
	}

	resp, err := http.Get(r.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("GET /v2/: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestBearerAuth(t *testing.T) {
	creds := &Credentials{"bob", "hunter2"}
	r := start(t, Options{BearerAuth: creds, Images: []string{"busybox", "multiarch"}})
	ref, _ := name.ParseReference(r.Ref("busybox"))

	// The challenge.
	resp, err := http.Get(r.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer realm="http://` + r.Addr() + `/token",service="testregistry"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Errorf("GET /v2/: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	resp, err = http.Get(r.URL() + "/v2/library/busybox/manifests/latest")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); got != want+`,scope="repository:library/busybox:pull"` {
		t.Errorf("manifest challenge %q", got)
	}

	// The token endpoint.
	get := func(user, pass string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, r.URL()+"/token?service=testregistry&scope=repository:library/busybox:pull", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("token without credentials: %d", code)
	}
	if code, _ := get("bob", "nope"); code != http.StatusUnauthorized {
		t.Errorf("token with a wrong password: %d", code)
	}
	code, body := get("bob", "hunter2")
	tok, _ := body["token"].(string)
	if code != http.StatusOK || tok == "" || body["access_token"] != tok {
		t.Fatalf("token: %d %v", code, body)
	}
	for _, c := range []struct {
		auth string
		want int
	}{{"Bearer " + tok, http.StatusOK}, {"Bearer x" + tok, http.StatusUnauthorized}, {"", http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /v2/ with %q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
	// The OAuth2 form.
	resp, err = http.PostForm(r.URL()+"/token", url.Values{
		"grant_type": {"password"}, "username": {"bob"}, "password": {"hunter2"},
		"service": {"testregistry"}, "client_id": {"test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body = nil
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body["access_token"] != tok || body["refresh_token"] == "" {
		t.Errorf("oauth token: %d %v", resp.StatusCode, body)
	}

	// ggcr's client does the whole flow.
	if _, err := remote.Image(ref); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("anonymous pull: %v, want 401", err)
	}
	if _, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "bob", Password: "bad"})); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("wrong password: %v, want 401", err)
	}
	before := r.TokenRequests()
	for _, n := range []string{"busybox", "multiarch"} {
		img := pull(t, r.Ref(n), remote.WithAuth(&authn.Basic{Username: "bob", Password: "hunter2"}))
		if c, _ := img.ConfigName(); c.String() != r.Image(n).ConfigDigest {
			t.Errorf("%s config %s", n, c)
		}
		if err := verifyImage(img); err != nil {
			t.Error(err)
		}
	}
	if r.TokenRequests() == before {
		t.Errorf("the client got no token")
	}
}

func TestCounters(t *testing.T) {
	r := start(t, Options{Images: []string{"busybox", "user"}})
	bb := r.Image("busybox")
	if _, err := pull(t, r.Ref("busybox")).RawConfigFile(); err != nil {
		t.Fatal(err)
	}
	// Manifest and config only, so far.
	if r.Requests() != 1 || r.BlobRequests(bb.ConfigDigest) != 1 || r.ManifestRequests() < 1 {
		t.Errorf("after manifest+config: %d blob GETs, config %d, manifests %d",
			r.Requests(), r.BlobRequests(bb.ConfigDigest), r.ManifestRequests())
	}
	layerURL := r.URL() + "/v2/berth/user/blobs/" + bb.LayerDigests[0]
	for i := 0; i < 2; i++ {
		resp, err := http.Get(layerURL)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Head(layerURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(r.URL() + "/v2/berth/user/blobs/sha256:" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown blob: %d", resp.StatusCode)
	}
	if got := r.BlobRequests(bb.LayerDigests[0]); got != 2 {
		t.Errorf("layer GETs %d, want 2 (HEADs do not count)", got)
	}
	if r.Requests() != 3 {
		t.Errorf("blob GETs %d, want 3", r.Requests())
	}
	r.ResetCounters()
	if r.Requests() != 0 || r.BlobRequests(bb.LayerDigests[0]) != 0 || r.ManifestRequests() != 0 {
		t.Errorf("counters not reset")
	}
}

func TestRange(t *testing.T) {
	r := start(t, Options{Images: []string{"busybox"}})
	digest := r.Image("busybox").LayerDigests[0]
	h, _ := v1.NewHash(digest)
	blob := r.cat.blobs[h.String()]
	for _, c := range []struct {
		rng        string
		from, to   int
		wantStatus int
	}{
		{"", 0, len(blob), http.StatusOK},
		{"bytes=100-", 100, len(blob), http.StatusPartialContent},
		{"bytes=10-19", 10, 20, http.StatusPartialContent},
	} {
		req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/library/busybox/blobs/"+digest, nil)
		if c.rng != "" {
			req.Header.Set("Range", c.rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != c.wantStatus || !bytes.Equal(body, blob[c.from:c.to]) ||
			resp.Header.Get("Docker-Content-Digest") != digest {
			t.Errorf("Range %q: %d, %d bytes, %v", c.rng, resp.StatusCode, len(body), err)
		}
	}
}

func TestSetDelay(t *testing.T) {
	r := start(t, Options{Images: []string{"busybox"}})
	layerURL := r.URL() + "/v2/library/busybox/blobs/" + r.Image("busybox").LayerDigests[0]
	const d = 1500 * time.Millisecond
	r.SetDelay(d)

	t0 := time.Now()
	resp, err := http.Get(layerURL)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	first := time.Since(t0)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	total := time.Since(t0)
	if err != nil || n+1024 != r.Image("busybox").Size-sizeOfManifestAndConfig(t, r, "busybox") {
		t.Errorf("body: %d bytes, %v", n+1024, err)
	}
	if first > d/2 || total < d {
		t.Errorf("first KiB after %s, whole body after %s; want the stall (%s) between them", first, total, d)
	}

	// Close aborts a stalled response.
	r.SetDelay(time.Hour)
	resp, err = http.Get(layerURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(100 * time.Millisecond); r.Close() }()
	t1 := time.Now()
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || time.Since(t1) > 10*time.Second {
		t.Errorf("stalled body after Close: %v after %s", err, time.Since(t1))
	}
}

func sizeOfManifestAndConfig(t *testing.T, r *Registry, n string) int64 {
	img, err := NativeImage(n)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	cfg, _ := img.RawConfigFile()
	return int64(len(raw) + len(cfg))
}

func TestPushAsMovesTag(t *testing.T) {
	r := start(t, Options{Images: []string{"busybox", "other"}})
	ref, _ := name.ParseReference(r.Addr() + "/library/busybox:latest")
	head := func() string {
		d, err := remote.Head(ref)
		if err != nil {
			t.Fatal(err)
		}
		return d.Digest.String()
	}
	if got := head(); got != r.Image("busybox").ManifestDigest {
		t.Fatalf("busybox:latest = %s", got)
	}
	if err := r.PushAs("other", "library/busybox", "latest"); err != nil {
		t.Fatal(err)
	}
	if got := head(); got != r.Image("other").ManifestDigest {
		t.Errorf("after PushAs busybox:latest = %s, want %s", got, r.Image("other").ManifestDigest)
	}
	img := pull(t, r.Ref("other"))
	layers, _ := img.Layers()
	_, files := tarEntries(t, layers[0])
	if files["etc/motd"] != "tag: other\n" {
		t.Errorf("other motd %q", files["etc/motd"])
	}
	// Pushing an index under a new name works too.
	if err := r.PushAs("multiarch-docker", "berth/moved", "v1"); err != nil {
		t.Fatal(err)
	}
	pull(t, r.Addr()+"/berth/moved:v1")
}

func TestOptions(t *testing.T) {
	r := start(t, Options{Images: []string{"busybox"}})
	ref, _ := name.ParseReference(r.Ref("multilayer"))
	if _, err := remote.Head(ref); !isStatus(err, http.StatusNotFound) {
		t.Errorf("image not selected: %v, want 404", err)
	}
	if _, err := Start(Options{Images: []string{"nope"}}); err == nil {
		t.Errorf("unknown image accepted")
	}
	if _, err := Start(Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Errorf("non-loopback address accepted")
	}
	if !strings.HasPrefix(r.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %s", r.URL())
	}
	if r.DigestRef("busybox") != r.Addr()+"/library/busybox@"+r.Image("busybox").ManifestDigest {
		t.Errorf("DigestRef %s", r.DigestRef("busybox"))
	}
}

func TestDockerArchive(t *testing.T) {
	for _, n := range []string{"busybox", "multilayer", "multiarch"} {
		path := filepath.Join(t.TempDir(), "image.tar")
		const ref = "docker.io/library/imported:v1"
		if err := WriteDockerArchive(path, n, ref); err != nil {
			t.Fatal(err)
		}
		tag, _ := name.NewTag(ref)
		img, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := Catalog()
		c, _ := img.ConfigName()
		layers, _ := img.Layers()
		if c.String() != info[n].ConfigDigest || len(layers) != len(info[n].LayerDigests) {
			t.Errorf("%s: config %s, %d layers; want %s, %d", n, c, len(layers), info[n].ConfigDigest, len(info[n].LayerDigests))
		}
		if err := verifyImage(img); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestOCIArchive(t *testing.T) {
	info, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"busybox", "multiarch"} {
		path := filepath.Join(t.TempDir(), "oci.tar")
		ref := "docker.io/library/imported-" + n + ":v1"
		if err := WriteOCIArchive(path, n, ref); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		untar(t, path, dir)
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			t.Fatal(err)
		}
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 1 || im.Manifests[0].Annotations[RefNameAnnotation] != ref {
			t.Fatalf("%s index.json: %+v", n, im.Manifests)
		}
		d := im.Manifests[0]
		if d.ArtifactType != "" || d.Size == 0 || d.MediaType != types.MediaType(info[n].MediaType) {
			t.Errorf("%s: index.json entry %+v", n, d)
		}
		if d.Digest.String() != info[n].ManifestDigest {
			t.Errorf("%s: entry %s, want %s", n, d.Digest, info[n].ManifestDigest)
		}
		var img v1.Image
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cm, _ := child.IndexManifest()
			if len(cm.Manifests) < 3 {
				t.Errorf("%s: nested index has %d entries", n, len(cm.Manifests))
			}
			h, _ := v1.NewHash(info[n].ImageManifestDigest)
			img, err = child.Image(h)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			img, err = idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
		}
		c, _ := img.ConfigName()
		if c.String() != info[n].ConfigDigest {
			t.Errorf("%s: config %s, want %s", n, c, info[n].ConfigDigest)
		}
		if err := verifyImage(img); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("entry %q escapes", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected entry %q", h.Name)
		}
	}
}
