package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/rootfs"
	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/server/store"
)

// imageVolumesDir holds a container's image volumes (Mount.image), each
// mounted read-only at <bundle>/image-volumes/<mount index>.
const imageVolumesDir = "image-volumes"

// preparedImageVolumes is what mountImageVolumes made: the host path of
// each image volume by mount index, the layers they use, and the holds
// that keep those layers while the container exists.
type preparedImageVolumes struct {
	paths    map[int]string
	layers   []string
	releases []func()
}

// release lets the volumes' layers go.
func (p preparedImageVolumes) release() {
	for _, r := range p.releases {
		r()
	}
}

// mountImageVolumes mounts the images that the request's Mount.image name
// read-only under the bundle, and records each image's ID in the request's
// mount (ImageSpec.image_ref), which ContainerStatus reports. Every image
// must have been pulled. Undo entries unmount what was mounted and let the
// held layers go.
func (s *Server) mountImageVolumes(pod *store.Pod, cfg *runtimeapi.ContainerConfig, bundle string, u *undo) (preparedImageVolumes, error) {
	var out preparedImageVolumes
	ims, err := spec.ImageMounts(cfg)
	if err != nil || len(ims) == 0 {
		return out, requestError("config.", err)
	}
	out.paths = map[int]string{}
	for _, im := range ims {
		m := cfg.GetMounts()[im.Index]
		field := fmt.Sprintf("config.mounts[%d]", im.Index)
		img := s.images.Get(m.GetImage().GetImage())
		if img == nil {
			return out, status.Errorf(codes.NotFound, "%s.image.image: image %q is not present; pull it first", field, m.GetImage().GetImage())
		}
		chains := img.ChainIDs()
		release := s.images.Hold(chains...)
		out.releases = append(out.releases, release)
		u.add("image volume hold", func() error { release(); return nil })
		lowers := make([]string, len(chains))
		for i, c := range chains {
			lowers[i] = s.images.LayerPath(c)
		}
		target := filepath.Join(bundle, imageVolumesDir, strconv.Itoa(im.Index))
		mount := rootfs.MountReadOnly
		if userns := podUserNSPath(pod); userns != "" {
			// The image's files show as the pod's root's, as in the
			// container's own root.
			mount = func(lowers []string, target string) error {
				return rootfs.MountReadOnlyIDMapped(lowers, target, userns)
			}
		}
		if err := mount(lowers, target); err != nil {
			return out, fmt.Errorf("%s: image volume: %w", field, err)
		}
		u.add("image volume "+target, func() error { return rootfs.Unmount(target) })
		src := target
		if im.SubPath != "" {
			// Symlinks in the image resolve inside it, never on the host.
			src, err = securejoin.SecureJoin(target, im.SubPath)
			if err != nil {
				return out, err
			}
			if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
				return out, status.Errorf(codes.InvalidArgument, "%s.image_sub_path: %q does not exist in image %q", field, im.SubPath, m.GetImage().GetImage())
			} else if err != nil {
				return out, err
			}
		}
		out.paths[im.Index] = src
		out.layers = append(out.layers, chains...)
		m.Image.ImageRef = img.ID
	}
	return out, nil
}

// unmountImageVolumes detaches every image volume of a container; gone
// ones are not an error, so removal can be repeated.
func unmountImageVolumes(bundle string) error {
	dir := filepath.Join(bundle, imageVolumesDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Idmapped layers a crash left attached first: removing the bundle
	// must never descend into a layer.
	errs := []error{rootfs.UnmountLowers(filepath.Join(dir, "0"))}
	for _, e := range entries {
		errs = append(errs, rootfs.Unmount(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}
