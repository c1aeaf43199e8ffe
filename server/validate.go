package server

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
)

// validators check a request before its handler runs, keyed by RPC name.
// Each error is InvalidArgument and names the field, so a client learns
// exactly what to fix. RPCs without an entry take any request.
var validators = map[string]func(any) error{
	"PullImage": func(r any) error {
		req := r.(*runtimeapi.PullImageRequest)
		if err := imageName("image", req.GetImage()); err != nil {
			return err
		}
		if a := req.GetAuth(); a != nil && a.GetAuth() != "" {
			if _, err := (&images.Auth{Auth: a.GetAuth()}).Authenticator(); err != nil {
				return invalid("auth.auth", "%v", err)
			}
		}
		return nil
	},
	"ImageStatus": func(r any) error {
		return imageSet("image", r.(*runtimeapi.ImageStatusRequest).GetImage())
	},
	"RemoveImage": func(r any) error {
		return imageSet("image", r.(*runtimeapi.RemoveImageRequest).GetImage())
	},
}

func validate(fullMethod string, req any) error {
	if v, ok := validators[shortMethod(fullMethod)]; ok {
		return v(req)
	}
	return nil
}

// imageSet requires an ImageSpec with a non-empty image; the name may be a
// reference or an image ID.
func imageSet(field string, spec *runtimeapi.ImageSpec) error {
	if spec == nil {
		return invalid(field, "must be set")
	}
	if spec.GetImage() == "" {
		return invalid(field+".image", "must not be empty")
	}
	return nil
}

// imageName requires an ImageSpec whose image is a valid reference.
func imageName(field string, spec *runtimeapi.ImageSpec) error {
	if err := imageSet(field, spec); err != nil {
		return err
	}
	if _, err := images.ParseRef(spec.GetImage()); err != nil {
		return invalid(field+".image", "%v", err)
	}
	return nil
}
