package images

import (
	"bytes"
	digest "github.com/opencontainers/go-digest"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// NodePlatform is the platform images are chosen for.
func NodePlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	return p
}

// choosePlatform picks the manifest of an index that runs on want. An exact
// variant match wins; an entry without a variant is taken when none matches
// exactly (as containerd does for arm64, whose only variant is v8).
func choosePlatform(index *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	var fallback *v1.Descriptor
	for i := range index.Manifests {
		d := index.Manifests[i]
		if d.Platform == nil || !isImageManifest(string(d.MediaType)) {
			continue
		}
		p := d.Platform
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if p.Variant == want.Variant || (want.Architecture == "arm64" && (p.Variant == "v8" || want.Variant == "v8") && (p.Variant == "" || want.Variant == "")) {
			return d, nil
		}
		if p.Variant == "" && fallback == nil {
			fallback = &index.Manifests[i]
		}
	}
	if fallback != nil {
		return *fallback, nil
	}
	var have []string
	for _, d := range index.Manifests {
		if d.Platform != nil {
			have = append(have, d.Platform.String())
		}
	}
	return v1.Descriptor{}, errorf(ErrNotFound, "no image for platform %s in index (has %v)", want.String(), have)
}

func isImageManifest(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json", "":
		return true
	}
	return false
}

func isIndex(mt string) bool {
	return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

func parseIndex(raw []byte) (*v1.IndexManifest, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, errorf(ErrBadContent, "index: %v", err)
	}
	return idx, nil
}

func digestFromString(s string) digest.Digest { return digest.Digest(s) }
