package server

import (
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
)

// toCRIImage converts a stored image to its CRI form. The config's user
// becomes a uid when it is numeric (the part before ':'), a username
// otherwise, as kubelet's runAsNonRoot check expects.
func toCRIImage(img *images.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        uint64(img.Size),
		Spec:        &runtimeapi.ImageSpec{Image: img.ID, Annotations: img.Annotations},
		Pinned:      img.Pinned,
	}
	uid, name := splitUser(img.User)
	if uid != nil {
		out.Uid = &runtimeapi.Int64Value{Value: *uid}
	} else {
		out.Username = name
	}
	return out
}

func splitUser(user string) (*int64, string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return nil, ""
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &n, ""
	}
	return nil, u
}
