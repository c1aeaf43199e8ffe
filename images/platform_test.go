package images

import (
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func desc(hex string, p *v1.Platform) v1.Descriptor {
	return v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: v1.Hash{Algorithm: "sha256", Hex: hex}, Platform: p}
}

func TestChoosePlatform(t *testing.T) {
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{
		desc("a1", &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}),
		desc("a2", &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}),
		desc("a3", &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}),
		desc("a4", &v1.Platform{OS: "windows", Architecture: "amd64"}),
		desc("a5", &v1.Platform{OS: "linux", Architecture: "amd64"}),
		{MediaType: "application/vnd.in-toto+json", Digest: v1.Hash{Algorithm: "sha256", Hex: "att"}, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
		desc("a6", &v1.Platform{OS: "linux", Architecture: "s390x"}),
	}}
	cases := []struct {
		want v1.Platform
		hex  string
	}{
		{v1.Platform{OS: "linux", Architecture: "amd64"}, "a5"},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "a2"},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "a1"},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, "a3"},
		{v1.Platform{OS: "linux", Architecture: "s390x"}, "a6"},
	}
	for _, c := range cases {
		d, err := choosePlatform(idx, c.want)
		if err != nil || d.Digest.Hex != c.hex {
			t.Errorf("%s: got %s, %v; want %s", c.want.String(), d.Digest.Hex, err, c.hex)
		}
	}
	if _, err := choosePlatform(idx, v1.Platform{OS: "linux", Architecture: "riscv64"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing platform: %v", err)
	}
	// An attestation manifest for the node's platform must never be chosen.
	only := &v1.IndexManifest{Manifests: idx.Manifests[5:6]}
	if _, err := choosePlatform(only, v1.Platform{OS: "linux", Architecture: "amd64"}); err == nil {
		t.Error("chose a non-image manifest")
	}
	// A variant-less entry stands in when no variant matches.
	noVariant := &v1.IndexManifest{Manifests: []v1.Descriptor{desc("b1", &v1.Platform{OS: "linux", Architecture: "arm"})}}
	if d, err := choosePlatform(noVariant, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}); err != nil || d.Digest.Hex != "b1" {
		t.Errorf("variant fallback: %v %v", d.Digest, err)
	}
}
