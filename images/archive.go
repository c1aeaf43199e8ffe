package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// An image archive is either an OCI image layout in a tar (oci-layout,
// index.json, blobs/sha256/...) or a `docker save` tar (manifest.json with
// Config, RepoTags and Layers paths). Both are read by first extracting the
// regular files to a temporary directory, hashing each as it is written, so
// that every blob is then opened by digest like a registry blob.

type extracted struct {
	dir   string
	files map[string]string // archive path -> sha256 digest
}

func (e *extracted) open(p string) (*os.File, error) {
	return os.Open(filepath.Join(e.dir, "f", filepath.FromSlash(p)))
}

// extractArchive copies the regular files of an archive into dir. Only
// plain relative names are accepted; links and devices are refused, since
// neither format has any.
func extractArchive(r io.Reader, dir string) (*extracted, error) {
	ex := &extracted{dir: dir, files: map[string]string{}}
	tr := tar.NewReader(r)
	buf := make([]byte, 128<<10)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ex, nil
		}
		if err != nil {
			return nil, errorf(ErrInvalid, "archive: %v", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			// docker save links identical layers; read them by target.
			return nil, errorf(ErrInvalid, "archive entry %q: links are not supported", h.Name)
		default:
			continue
		}
		if !filepath.IsLocal(name) {
			return nil, errorf(ErrInvalid, "archive entry %q: not a relative path", h.Name)
		}
		dst := filepath.Join(dir, "f", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, errorf(ErrInvalid, "archive entry %q: %v", h.Name, err)
		}
		hash := sha256.New()
		_, err = io.CopyBuffer(io.MultiWriter(f, hash), tr, buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("archive entry %q: %w", h.Name, err)
		}
		ex.files[name] = "sha256:" + hex.EncodeToString(hash.Sum(nil))
	}
}

// archiveImage is one image found in an archive.
type archiveImage struct {
	names       []string // full references to tag
	rawManifest []byte
	rawIndex    []byte
	src         source
}

func (e *extracted) images() ([]archiveImage, error) {
	if _, ok := e.files["index.json"]; ok {
		return e.ociImages()
	}
	if _, ok := e.files["manifest.json"]; ok {
		return e.dockerImages()
	}
	return nil, errorf(ErrInvalid, "archive has neither index.json (OCI layout) nor manifest.json (docker save)")
}

func (e *extracted) readSmall(p string) ([]byte, error) {
	f, err := e.open(p)
	if err != nil {
		return nil, errorf(ErrInvalid, "archive: %s: %v", p, err)
	}
	defer f.Close()
	return readAllLimited(f, p)
}

// blobSource opens OCI layout blobs by digest, checking the digest that
// was computed while extracting.
func (e *extracted) blobSource(name string) source {
	return source{name: name, open: func(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		p := "blobs/" + d.Digest.Algorithm().String() + "/" + d.Digest.Encoded()
		if got, ok := e.files[p]; !ok || got != d.Digest.String() {
			return nil, errorf(ErrNotFound, "archive has no blob %s", d.Digest)
		}
		return e.open(p)
	}}
}

func (e *extracted) ociImages() ([]archiveImage, error) {
	raw, err := e.readSmall("index.json")
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, errorf(ErrInvalid, "archive index.json: %v", err)
	}
	src := e.blobSource("archive")
	var out []archiveImage
	for _, d := range idx.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return nil, errorf(ErrInvalid, "archive index.json: %v", err)
		}
		img := archiveImage{src: src}
		for _, key := range []string{"io.containerd.image.name", ocispec.AnnotationRefName} {
			if n := d.Annotations[key]; n != "" {
				if ref, err := ParseRef(n); err == nil && ref.Digest == "" && strings.Contains(n, ":") {
					img.names = []string{ref.TagRef()}
					break
				}
			}
		}
		body, err := e.blob(src, d)
		if err != nil {
			return nil, err
		}
		if isIndex(d.MediaType) {
			img.rawIndex = body
			chosen, err := chooseFromRaw(body)
			if err != nil {
				return nil, err
			}
			if body, err = e.blob(src, chosen); err != nil {
				return nil, err
			}
		}
		img.rawManifest = body
		out = append(out, img)
	}
	return out, nil
}

func (e *extracted) blob(src source, d ocispec.Descriptor) ([]byte, error) {
	rc, err := src.open(context.Background(), d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAllLimited(rc, d.Digest.String())
}

func (e *extracted) dockerImages() ([]archiveImage, error) {
	raw, err := e.readSmall("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, errorf(ErrInvalid, "archive manifest.json: %v", err)
	}
	var out []archiveImage
	for _, ent := range entries {
		// Build an OCI manifest for the entry from the files' own digests,
		// so the rest of the import is the registry path.
		byDigest := map[string]string{}
		desc := func(p, mt string) (ocispec.Descriptor, error) {
			p = path.Clean(p)
			d, ok := e.files[p]
			if !ok {
				return ocispec.Descriptor{}, errorf(ErrInvalid, "archive manifest.json names %q, which is not in the archive", p)
			}
			st, err := os.Stat(filepath.Join(e.dir, "f", filepath.FromSlash(p)))
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			byDigest[d] = p
			return ocispec.Descriptor{MediaType: mt, Digest: digestFromString(d), Size: st.Size()}, nil
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
		m.SchemaVersion = 2
		if m.Config, err = desc(ent.Config, ocispec.MediaTypeImageConfig); err != nil {
			return nil, err
		}
		for _, l := range ent.Layers {
			d, err := desc(l, ocispec.MediaTypeImageLayer)
			if err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, d)
		}
		rawManifest, _ := json.Marshal(m)
		img := archiveImage{rawManifest: rawManifest, src: source{name: "archive", open: func(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
			p, ok := byDigest[d.Digest.String()]
			if !ok {
				return nil, errorf(ErrNotFound, "archive has no blob %s", d.Digest)
			}
			return e.open(p)
		}}}
		for _, t := range ent.RepoTags {
			ref, err := ParseRef(t)
			if err != nil || ref.Digest != "" {
				return nil, errorf(ErrInvalid, "archive manifest.json: RepoTags %q: not a tag", t)
			}
			img.names = append(img.names, ref.TagRef())
		}
		out = append(out, img)
	}
	return out, nil
}

func chooseFromRaw(rawIndex []byte) (ocispec.Descriptor, error) {
	idx, err := parseIndex(rawIndex)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := choosePlatform(idx, NodePlatform())
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digestFromString(d.Digest.String()), Size: d.Size}, nil
}

// Import reads an image archive and records its images under the names it
// carries. It returns the images imported.
func (s *Service) Import(ctx context.Context, r io.Reader) ([]*Image, error) {
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ex, err := extractArchive(r, tmp)
	if err != nil {
		return nil, err
	}
	found, err := ex.images()
	if err != nil {
		return nil, err
	}
	s.cfgMu.RLock()
	jobs := s.jobs
	s.cfgMu.RUnlock()
	var out []*Image
	for _, a := range found {
		img, release, err := s.ingest(ctx, a.src, a.rawManifest, jobs)
		if err != nil {
			return out, err
		}
		if a.rawIndex != nil {
			if err := s.writeBlob(digestOf(a.rawIndex), a.rawIndex); err != nil {
				release()
				return out, err
			}
			img.IndexDigest = digestOf(a.rawIndex)
		}
		names := a.names
		if len(names) == 0 {
			names = []string{""}
		}
		var rec *Image
		for _, n := range names {
			if rec, err = s.commit(img, n, ""); err != nil {
				break
			}
		}
		release()
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, errors.New("archive holds no image")
	}
	return out, nil
}
