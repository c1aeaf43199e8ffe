package testregistry

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefNameAnnotation is the OCI annotation that names an image of a layout.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// WriteDockerArchive writes catalog image name (its image for this machine's
// platform, for a multi-arch name) to path in `docker save` format, tagged
// as ref (e.g. "docker.io/library/imported:v1").
func WriteDockerArchive(path, name, ref string) error {
	e, err := lookup(name)
	if err != nil {
		return err
	}
	tag, err := parseTag(ref)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(path, tag, e.img); err != nil {
		return fmt.Errorf("testregistry: docker archive of %s: %w", name, err)
	}
	return nil
}

// WriteOCIArchive writes catalog image name to path as a tar of an OCI image
// layout (oci-layout, index.json, blobs/sha256/...). index.json has one
// entry, annotated with org.opencontainers.image.ref.name=ref; for a
// multi-arch name that entry is the whole index.
func WriteOCIArchive(path, name, ref string) error {
	e, err := lookup(name)
	if err != nil {
		return err
	}
	if _, err := parseTag(ref); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "testregistry-oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("testregistry: oci layout: %w", err)
	}
	// The blobs go in with ggcr, the index.json entry is written here: ggcr's
	// AppendImage would add an artifactType that image entries don't have.
	var art partial.Describable
	if e.idx != nil {
		art = e.idx
		err = lp.WriteIndex(e.idx)
	} else {
		art = e.img
		err = lp.WriteImage(e.img)
	}
	if err != nil {
		return fmt.Errorf("testregistry: oci layout of %s: %w", name, err)
	}
	desc := v1.Descriptor{Annotations: map[string]string{RefNameAnnotation: ref}}
	if desc.Digest, err = art.Digest(); err != nil {
		return err
	}
	if desc.Size, err = art.Size(); err != nil {
		return err
	}
	if desc.MediaType, err = art.MediaType(); err != nil {
		return err
	}
	if err := lp.AppendDescriptor(desc); err != nil {
		return fmt.Errorf("testregistry: oci layout of %s: %w", name, err)
	}
	return tarDir(tmp, path)
}

func parseTag(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("testregistry: reference %q: %w", ref, err)
	}
	return t, nil
}

// tarDir writes the tree under dir to a tar file at out, with paths relative
// to dir, sorted, and fixed metadata, so the archive's bytes depend only on
// the tree's content.
func tarDir(dir, out string) (err error) {
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			hdr.Typeflag, hdr.Mode, hdr.Name = tar.TypeDir, 0o755, hdr.Name+"/"
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
		default:
			return fmt.Errorf("testregistry: unexpected file %s in oci layout", p)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
