package spec

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageMount is what the caller needs to prepare one image volume
// (Mount.image): the container path it goes to and the path inside the
// image to mount ("" for the whole image).
type ImageMount struct {
	Index         int
	ContainerPath string
	SubPath       string
}

// ImageMounts checks the request's image volumes. They must be read-only,
// as the CRI asks; a sub path must be relative and stay inside the image.
func ImageMounts(c *runtimeapi.ContainerConfig) ([]ImageMount, error) {
	var out []ImageMount
	for i, m := range c.GetMounts() {
		if m.GetImage() == nil {
			continue
		}
		field := indexed("mounts", i)
		if m.GetImage().GetImage() == "" {
			return nil, fieldErr(field+".image.image", "empty")
		}
		dst, err := containerPath(field+".container_path", m.GetContainerPath())
		if err != nil {
			return nil, err
		}
		if !m.GetReadonly() {
			return nil, fieldErr(field+".readonly", "an image volume must be read-only")
		}
		if m.GetHostPath() != "" {
			return nil, fieldErr(field+".host_path", "must be empty for an image volume")
		}
		if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
			return nil, fieldErr(field+".uidMappings", "id-mapped mounts need user namespaces, which are not supported")
		}
		sub := m.GetImageSubPath()
		if sub != "" {
			switch {
			case path.IsAbs(sub):
				return nil, fieldErr(field+".image_sub_path", "%q is not a relative path", sub)
			case strings.IndexByte(sub, 0) >= 0:
				return nil, fieldErr(field+".image_sub_path", "contains a NUL byte")
			case slices.Contains(strings.Split(sub, "/"), ".."):
				return nil, fieldErr(field+".image_sub_path", "%q leaves the image", sub)
			}
			sub = path.Clean(sub)
			if sub == "." {
				sub = ""
			}
		}
		out = append(out, ImageMount{Index: i, ContainerPath: dst, SubPath: sub})
	}
	return out, nil
}

// imageVolumeMount is the bind mount of a prepared image volume: read-only
// and without device files, but executable, as image volumes may carry
// binaries.
func imageVolumeMount(dst, src string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "ro", "nodev"}}
}
