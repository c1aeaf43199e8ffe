package images

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// Ref is an image name normalised the way kubelet and crictl expect:
// "busybox" is docker.io/library/busybox:latest.
type Ref struct {
	Repo   string // docker.io/library/busybox
	Tag    string // latest; empty when the name carries only a digest
	Digest string // sha256:...; empty for a tag
}

// Domain is the registry host of the name.
func (r Ref) Domain() string { return strings.SplitN(r.Repo, "/", 2)[0] }

// Path is the repository path inside the registry (library/busybox).
func (r Ref) Path() string { return strings.SplitN(r.Repo, "/", 2)[1] }

// String is the full normalised name, by digest when there is one.
func (r Ref) String() string {
	if r.Digest != "" {
		return r.Repo + "@" + r.Digest
	}
	return r.Repo + ":" + r.Tag
}

// TagRef is repo:tag, the form stored in an image's repo tags.
func (r Ref) TagRef() string { return r.Repo + ":" + r.Tag }

// ParseRef normalises an image name. A name with both a tag and a digest is
// pulled by digest, as containerd and CRI-O do; the tag is kept for display.
func ParseRef(name string) (Ref, error) {
	if name == "" {
		return Ref{}, fmt.Errorf("image name is empty")
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return Ref{}, fmt.Errorf("invalid image name %q: %v", name, err)
	}
	r := Ref{Repo: named.Name()}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest().String()
	}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// isImageID reports whether s looks like a full or truncated image ID
// ("sha256:<hex>" or bare hex of at least 12 digits); such strings name an
// image by ID rather than by repository.
func isImageID(s string) (string, bool) {
	hex := strings.TrimPrefix(s, "sha256:")
	if len(hex) < 12 || len(hex) > 64 {
		return "", false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	if len(hex) == 64 {
		if err := digest.Digest("sha256:" + hex).Validate(); err != nil {
			return "", false
		}
	}
	return hex, true
}
