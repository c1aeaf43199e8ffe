package testregistry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxEnv names an environment variable that overrides where the static
// busybox binary is read from. By default it is /bin/busybox from Debian's
// busybox-static package; the digests of every image that contains it follow
// that file, so they are stable for as long as the package version is.
const BusyboxEnv = "BERTH_TEST_BUSYBOX"

const defaultBusybox = "/bin/busybox"

// Env of every image config. It matches what common base images set so
// that tests of PATH handling see a familiar value.
var defaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// busyboxApplets are linked to /bin/busybox in every rootfs.
var busyboxApplets = []string{"cat", "echo", "env", "false", "id", "ls", "nc", "sh", "sleep", "top", "true", "wget"}

// ImageInfo describes an image of the catalog as pushed to a Registry.
type ImageInfo struct {
	Name string // short name, the key of the catalog
	Repo string // repository path inside the registry, e.g. "library/busybox"
	Tag  string // e.g. "latest"

	// ManifestDigest is the digest of what the tag points to: the index (or
	// manifest list) for the multi-arch images, the image manifest otherwise.
	ManifestDigest string
	// ImageManifestDigest is the digest of the manifest of the image for
	// this machine's platform; equal to ManifestDigest for single images.
	ImageManifestDigest string
	// ConfigDigest is the digest of the config blob of the image for this
	// machine's platform: the image ID a runtime reports.
	ConfigDigest string
	// LayerDigests are the compressed (blob) digests of the layers of the
	// image for this machine's platform, base first.
	LayerDigests []string
	DiffIDs      []string
	// LayerMediaTypes parallels LayerDigests.
	LayerMediaTypes []string
	// MediaType is the media type of what the tag points to.
	MediaType string
	// Size is the sum of the manifest, config and layer blob sizes of the
	// image for this machine's platform.
	Size int64
	// User is the config's User field ("" for root by default).
	User string
	// Platforms lists "os/arch[/variant]" of each entry of an index, in
	// index order; nil for single images.
	Platforms []string
}

// entry is one built image of the catalog.
type entry struct {
	info ImageInfo
	img  v1.Image      // the image for this machine's platform
	idx  v1.ImageIndex // non-nil when the tag points to an index
}

type catalog struct {
	entries map[string]*entry
	// blobs holds every config and layer blob by digest. It is shared,
	// read-only, by all registries of the process.
	blobs map[string][]byte
}

var (
	buildOnce   sync.Once
	builtCat    *catalog
	buildErr    error
	busyboxOnce sync.Once
	busyboxData []byte
	busyboxErr  error
)

// loadCatalog builds the catalog on first use and returns the cached one
// afterwards: building ~50 MB of layers costs about a second.
func loadCatalog() (*catalog, error) {
	buildOnce.Do(func() { builtCat, buildErr = buildCatalog() })
	return builtCat, buildErr
}

// Names returns the short names of all images of the catalog, sorted.
func Names() []string {
	names := make([]string, 0, len(catalogSpecs))
	for _, s := range catalogSpecs {
		names = append(names, s.name)
	}
	sort.Strings(names)
	return names
}

// Catalog builds the images (once per process) and returns their info by
// short name, without starting a registry.
func Catalog() (map[string]ImageInfo, error) {
	c, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	out := make(map[string]ImageInfo, len(c.entries))
	for n, e := range c.entries {
		out[n] = e.info.clone()
	}
	return out, nil
}

// NativeImage returns the built image name for this machine's platform (the
// native child of an index), for tests that want to inspect or re-push it.
func NativeImage(name string) (v1.Image, error) {
	e, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return e.img, nil
}

func lookup(name string) (*entry, error) {
	c, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	e, ok := c.entries[name]
	if !ok {
		return nil, fmt.Errorf("testregistry: no image %q in the catalog (have %v)", name, Names())
	}
	return e, nil
}

func (i ImageInfo) clone() ImageInfo {
	i.LayerDigests = append([]string(nil), i.LayerDigests...)
	i.DiffIDs = append([]string(nil), i.DiffIDs...)
	i.LayerMediaTypes = append([]string(nil), i.LayerMediaTypes...)
	if i.Platforms != nil {
		i.Platforms = append([]string(nil), i.Platforms...)
	}
	return i
}

type catalogSpec struct {
	name, repo, tag string
}

// catalogSpecs maps short names to where they are pushed. The repository
// paths are the ones the images would have on docker.io, so a test that
// points docker.io at the registry can say "busybox" and mean
// docker.io/library/busybox:latest.
var catalogSpecs = []catalogSpec{
	{"busybox", "library/busybox", "latest"},
	{"busybox-docker", "library/busybox", "docker"},
	{"multilayer", "berth/multilayer", "latest"},
	{"multiarch", "berth/multiarch", "latest"},
	{"multiarch-docker", "berth/multiarch-docker", "latest"},
	{"user", "berth/user", "latest"},
	{"username", "berth/username", "latest"},
	{"zstd", "berth/zstd", "latest"},
	{"big", "berth/big", "latest"},
	{"hostile", "berth/hostile", "latest"},
	{"hostile-symlink", "berth/hostile-symlink", "latest"},
	{"uncompressed", "berth/uncompressed", "latest"},
	{"other", "berth/busybox", "other"},
	{"pause", "berth/pause", "latest"},
}

func readBusybox() ([]byte, error) {
	busyboxOnce.Do(func() {
		p := os.Getenv(BusyboxEnv)
		if p == "" {
			p = defaultBusybox
		}
		busyboxData, busyboxErr = os.ReadFile(p)
		if busyboxErr != nil {
			busyboxErr = fmt.Errorf("testregistry: reading the static busybox binary (install it with `apt-get install -y busybox-static` or set %s): %w", BusyboxEnv, busyboxErr)
		}
	})
	return busyboxData, busyboxErr
}

// pauseCmd is the command of the pause image: sleep as long as a 32-bit
// seconds count allows, which is forever for a pod.
var pauseCmd = []string{"/bin/sleep", "2147483647"}

// Account database of every rootfs. berth (1000:1000) has supplementary
// groups wheel (10) and extra (1001), so `id berth` inside a container prints
// uid=1000(berth) gid=1000(berth) groups=1000(berth),10(wheel),1001(extra).
const (
	passwdFile = "root:x:0:0:root:/root:/bin/sh\n" +
		"berth:x:1000:1000:berth:/home/berth:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	groupFile = "root:x:0:\n" +
		"wheel:x:10:berth\n" +
		"berth:x:1000:\n" +
		"extra:x:1001:berth\n" +
		"nogroup:x:65534:\n"
)

// baseEntries is the rootfs shared by the images: busybox and its applet
// links, the account files, /etc/motd naming the tag ("tag: latest" in the
// shared base, "tag: other" in the `other` image), and the usual top-level
// directories with their usual modes.
func baseEntries(busybox []byte, motd string) []fileEntry {
	home := dir("home/berth", 0o755)
	home.uid, home.gid = 1000, 1000
	es := []fileEntry{
		dir("bin", 0o755),
		file("bin/busybox", 0o755, busybox),
		dir("dev", 0o755),
		dir("etc", 0o755),
		file("etc/group", 0o644, []byte(groupFile)),
		file("etc/motd", 0o644, []byte(motd)),
		file("etc/passwd", 0o644, []byte(passwdFile)),
		dir("home", 0o755),
		home,
		dir("proc", 0o555),
		dir("root", 0o700),
		dir("sys", 0o555),
		dir("tmp", 0o1777),
	}
	for _, a := range busyboxApplets {
		es = append(es, symlink("bin/"+a, "busybox"))
	}
	return es
}

// platform is one entry of the multi-arch images.
type platform struct{ arch, variant string }

func (p platform) String() string {
	s := "linux/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

// nativePlatform is the platform images must have to run on this machine.
func nativePlatform() platform {
	switch runtime.GOARCH {
	case "arm64":
		return platform{"arm64", "v8"}
	case "arm":
		return platform{"arm", "v7"}
	}
	return platform{runtime.GOARCH, ""}
}

// layerSpec is a layer plus the history line that describes it.
type layerSpec struct {
	layer     *memLayer
	createdBy string
}

type imageSpec struct {
	docker bool
	plat   platform
	user   string
	cmd    []string // nil means ["sh"]
	layers []layerSpec
}

// makeImage assembles an image with either OCI or Docker schema 2 media
// types. The config is the same JSON for both flavours, so a Docker and an
// OCI image with the same layers share their config digest (image ID).
func makeImage(s imageSpec) (v1.Image, error) {
	manifestMT, configMT := types.OCIManifestSchema1, types.OCIConfigJSON
	if s.docker {
		manifestMT, configMT = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	img := mutate.MediaType(empty.Image, manifestMT)
	img = mutate.ConfigMediaType(img, configMT)
	cmd := s.cmd
	if cmd == nil {
		cmd = []string{"sh"}
	}
	cfg := &v1.ConfigFile{
		Architecture: s.plat.arch,
		Variant:      s.plat.variant,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Env:  append([]string(nil), defaultEnv...),
			Cmd:  cmd,
			User: s.user,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(s.layers))
	for _, l := range s.layers {
		layer := l.layer
		if s.docker {
			layer = layer.withMediaType(dockerLayerType(layer.mediaType))
		}
		adds = append(adds, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: l.createdBy},
		})
	}
	return mutate.Append(img, adds...)
}

func dockerLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.OCILayer:
		return types.DockerLayer
	case types.OCIUncompressedLayer:
		return types.DockerUncompressedLayer
	}
	return mt
}

// indexChild is one platform's image of a multi-arch index.
type indexChild struct {
	plat platform
	img  v1.Image
}

// makeIndex writes the index JSON itself rather than with ggcr's
// mutate.AppendManifests, which stamps every entry with an artifactType (the
// config media type): real image indexes and Docker manifest lists carry
// only mediaType, size, digest and platform.
func makeIndex(docker bool, children []indexChild) (v1.ImageIndex, error) {
	mt := types.OCIImageIndex
	if docker {
		mt = types.DockerManifestList
	}
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: mt}
	idx := &rawIndex{mediaType: mt, images: map[v1.Hash]v1.Image{}}
	for _, c := range children {
		d, err := c.img.Digest()
		if err != nil {
			return nil, err
		}
		size, err := c.img.Size()
		if err != nil {
			return nil, err
		}
		cmt, err := c.img.MediaType()
		if err != nil {
			return nil, err
		}
		im.Manifests = append(im.Manifests, v1.Descriptor{
			MediaType: cmt,
			Size:      size,
			Digest:    d,
			Platform:  &v1.Platform{OS: "linux", Architecture: c.plat.arch, Variant: c.plat.variant},
		})
		idx.images[d] = c.img
	}
	raw, err := json.Marshal(im)
	if err != nil {
		return nil, err
	}
	idx.raw = raw
	return idx, nil
}

// rawIndex is a v1.ImageIndex over fixed manifest bytes and in-memory child
// images.
type rawIndex struct {
	raw       []byte
	mediaType types.MediaType
	images    map[v1.Hash]v1.Image
}

var _ v1.ImageIndex = (*rawIndex)(nil)

func (i *rawIndex) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *rawIndex) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *rawIndex) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *rawIndex) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(i.raw))
	return h, err
}
func (i *rawIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(i.raw))
}
func (i *rawIndex) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := i.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("testregistry: no image %s in index", h)
}
func (i *rawIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("testregistry: no index %s in index", h)
}

func buildCatalog() (*catalog, error) {
	busybox, err := readBusybox()
	if err != nil {
		return nil, err
	}
	native := nativePlatform()

	mk := func(entries []fileEntry, c compression) (*memLayer, error) {
		tb, err := buildTar(entries, true)
		if err != nil {
			return nil, err
		}
		return newLayer(tb, c, false)
	}

	baseTar, err := buildTar(baseEntries(busybox, "tag: latest\n"), true)
	if err != nil {
		return nil, err
	}
	baseGz, err := newLayer(baseTar, compGzip, false)
	if err != nil {
		return nil, err
	}
	baseZstd, err := newLayer(baseTar, compZstd, false)
	if err != nil {
		return nil, err
	}
	baseRaw, err := newLayer(baseTar, compNone, false)
	if err != nil {
		return nil, err
	}
	base := layerSpec{baseGz, "busybox rootfs"}

	// busybox / busybox-docker / user / username: the base layer alone.
	simple := func(docker bool, user string, layers ...layerSpec) (v1.Image, error) {
		return makeImage(imageSpec{docker: docker, plat: native, user: user, layers: layers})
	}

	// multilayer. Layer 2 adds /data/{a,b}.txt and /opq/{x.txt,sub/y.txt};
	// layer 3 whites out /data/a.txt and makes /opq opaque before adding
	// /opq/new.txt. The expected final view, over the base rootfs, is:
	//
	//	/data/b.txt   "b\n"
	//	/opq/new.txt  "new\n"
	//
	// with no /data/a.txt, /opq/x.txt or /opq/sub, and no .wh.* entries.
	ml2, err := mk([]fileEntry{
		dir("data", 0o755),
		file("data/a.txt", 0o644, []byte("a\n")),
		file("data/b.txt", 0o644, []byte("b\n")),
		dir("opq", 0o755),
		file("opq/x.txt", 0o644, []byte("x\n")),
		dir("opq/sub", 0o755),
		file("opq/sub/y.txt", 0o644, []byte("y\n")),
	}, compGzip)
	if err != nil {
		return nil, err
	}
	ml3, err := mk([]fileEntry{
		dir("data", 0o755),
		file("data/.wh.a.txt", 0o000, nil),
		dir("opq", 0o755),
		file("opq/.wh..wh..opq", 0o000, nil),
		file("opq/new.txt", 0o644, []byte("new\n")),
	}, compGzip)
	if err != nil {
		return nil, err
	}

	// zstd: the base and a second layer, both zstd-compressed.
	z2, err := mk([]fileEntry{
		dir("zstd", 0o755),
		file("zstd/hello.txt", 0o644, []byte("compressed with zstd\n")),
	}, compZstd)
	if err != nil {
		return nil, err
	}

	// big: four layers of 3 x 4 MiB of incompressible data under
	// /big/layerN/fileM.bin.
	bigLayers := []layerSpec{base}
	for n := 1; n <= 4; n++ {
		d := fmt.Sprintf("big/layer%d", n)
		es := []fileEntry{dir("big", 0o755), dir(d, 0o755)}
		for m := 1; m <= 3; m++ {
			es = append(es, file(fmt.Sprintf("%s/file%d.bin", d, m), 0o644,
				seededBytes(fmt.Sprintf("berth-testregistry-big-%d-%d", n, m), 4<<20)))
		}
		l, err := mk(es, compGzip)
		if err != nil {
			return nil, err
		}
		bigLayers = append(bigLayers, layerSpec{l, fmt.Sprintf("big data %d", n)})
	}

	// hostile: a layer whose only entry climbs out of the rootfs.
	hostileTar, err := buildTar([]fileEntry{
		file("../../escape", 0o644, []byte("escaped from the rootfs\n")),
	}, false)
	if err != nil {
		return nil, err
	}
	hostile, err := newLayer(hostileTar, compGzip, false)
	if err != nil {
		return nil, err
	}
	// hostile-symlink: a symlink to an absolute host path, then a file
	// written through it. The order matters: a naive extractor creates the
	// link first and then follows it to write /tmp/pwned on the host.
	hsTar, err := buildTar([]fileEntry{
		symlink("evil", "/tmp"),
		file("evil/pwned", 0o644, []byte("written through a symlink\n")),
	}, false)
	if err != nil {
		return nil, err
	}
	hostileSymlink, err := newLayer(hsTar, compGzip, false)
	if err != nil {
		return nil, err
	}

	// other: the same rootfs as busybox except /etc/motd says "tag: other",
	// so its single layer (and every digest) differs from busybox's.
	otherL, err := mk(baseEntries(busybox, "tag: other\n"), compGzip)
	if err != nil {
		return nil, err
	}

	// multiarch: the native platform runs busybox; the others only carry the
	// marker. Every platform has /arch holding its "arch[/variant]"
	// (e.g. "amd64\n", "arm64/v8\n", "arm/v7\n").
	plats := []platform{{"amd64", ""}, {"arm64", "v8"}, {"arm", "v7"}}
	if !hasPlatformArch(plats, native.arch) {
		plats = append(plats, native)
	}
	archLayers := map[string]*memLayer{}
	for _, p := range plats {
		label := p.arch
		if p.variant != "" {
			label += "/" + p.variant
		}
		l, err := mk([]fileEntry{file("arch", 0o644, []byte(label+"\n"))}, compGzip)
		if err != nil {
			return nil, err
		}
		archLayers[p.String()] = l
	}
	multiarch := func(docker bool) (v1.ImageIndex, v1.Image, error) {
		var children []indexChild
		var nativeImg v1.Image
		for _, p := range plats {
			marker := layerSpec{archLayers[p.String()], "arch marker " + p.String()}
			s := imageSpec{docker: docker, plat: p, layers: []layerSpec{marker}}
			isNative := p.arch == native.arch
			if isNative {
				s.plat = native
				s.layers = []layerSpec{base, marker}
			}
			img, err := makeImage(s)
			if err != nil {
				return nil, nil, err
			}
			if isNative {
				nativeImg = img
			}
			children = append(children, indexChild{plat: s.plat, img: img})
		}
		idx, err := makeIndex(docker, children)
		return idx, nativeImg, err
	}

	c := &catalog{entries: map[string]*entry{}, blobs: map[string][]byte{}}
	for _, spec := range catalogSpecs {
		var img v1.Image
		var idx v1.ImageIndex
		var err error
		switch spec.name {
		case "busybox":
			img, err = simple(false, "", base)
		case "busybox-docker":
			img, err = simple(true, "", base)
		case "multilayer":
			img, err = simple(false, "", base,
				layerSpec{ml2, "add /data and /opq"},
				layerSpec{ml3, "whiteout /data/a.txt, opaque /opq"})
		case "multiarch":
			idx, img, err = multiarch(false)
		case "multiarch-docker":
			idx, img, err = multiarch(true)
		case "user":
			img, err = simple(false, "1000:1000", base)
		case "username":
			img, err = simple(false, "berth", base)
		case "zstd":
			img, err = simple(false, "", layerSpec{baseZstd, "busybox rootfs (zstd)"},
				layerSpec{z2, "add /zstd/hello.txt"})
		case "big":
			img, err = simple(false, "", bigLayers...)
		case "hostile":
			img, err = simple(false, "", base, layerSpec{hostile, "entry ../../escape"})
		case "hostile-symlink":
			img, err = simple(false, "", base, layerSpec{hostileSymlink, "symlink evil -> /tmp, file evil/pwned"})
		case "uncompressed":
			img, err = simple(false, "", layerSpec{baseRaw, "busybox rootfs (uncompressed)"})
		case "other":
			img, err = simple(false, "", layerSpec{otherL, "busybox rootfs, motd other"})
		case "pause":
			// A sandbox image for runtimes that run one process per pod
			// (containerd's sandbox_image): the busybox base, sleeping.
			img, err = makeImage(imageSpec{plat: native, cmd: pauseCmd, layers: []layerSpec{base}})
		default:
			err = fmt.Errorf("no recipe for %q", spec.name)
		}
		if err != nil {
			return nil, fmt.Errorf("testregistry: building %s: %w", spec.name, err)
		}
		e := &entry{img: img, idx: idx}
		if err := e.fill(spec, c.blobs); err != nil {
			return nil, fmt.Errorf("testregistry: building %s: %w", spec.name, err)
		}
		c.entries[spec.name] = e
	}
	return c, nil
}

func hasPlatformArch(ps []platform, arch string) bool {
	for _, p := range ps {
		if p.arch == arch {
			return true
		}
	}
	return false
}

// fill computes the entry's ImageInfo and records its config and layer
// blobs (of every platform, for an index) in blobs.
func (e *entry) fill(spec catalogSpec, blobs map[string][]byte) error {
	images := []v1.Image{e.img}
	info := ImageInfo{Name: spec.name, Repo: spec.repo, Tag: spec.tag}
	if e.idx != nil {
		d, err := e.idx.Digest()
		if err != nil {
			return err
		}
		mt, err := e.idx.MediaType()
		if err != nil {
			return err
		}
		im, err := e.idx.IndexManifest()
		if err != nil {
			return err
		}
		info.ManifestDigest, info.MediaType = d.String(), string(mt)
		images = images[:0]
		for _, desc := range im.Manifests {
			p := desc.Platform
			s := p.OS + "/" + p.Architecture
			if p.Variant != "" {
				s += "/" + p.Variant
			}
			info.Platforms = append(info.Platforms, s)
			child, err := e.idx.Image(desc.Digest)
			if err != nil {
				return err
			}
			images = append(images, child)
		}
	}

	for _, img := range images {
		raw, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		cd, err := img.ConfigName()
		if err != nil {
			return err
		}
		blobs[cd.String()] = raw
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			if _, ok := blobs[d.String()]; ok {
				continue
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			blobs[d.String()] = b
		}
	}

	raw, err := e.img.RawManifest()
	if err != nil {
		return err
	}
	m, err := e.img.Manifest()
	if err != nil {
		return err
	}
	cf, err := e.img.ConfigFile()
	if err != nil {
		return err
	}
	md, err := e.img.Digest()
	if err != nil {
		return err
	}
	info.ImageManifestDigest = md.String()
	if e.idx == nil {
		info.ManifestDigest, info.MediaType = md.String(), string(m.MediaType)
	}
	info.ConfigDigest = m.Config.Digest.String()
	info.User = cf.Config.User
	info.Size = int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		info.LayerDigests = append(info.LayerDigests, l.Digest.String())
		info.LayerMediaTypes = append(info.LayerMediaTypes, string(l.MediaType))
		info.Size += l.Size
	}
	for _, d := range cf.RootFS.DiffIDs {
		info.DiffIDs = append(info.DiffIDs, d.String())
	}
	e.info = info
	return nil
}
