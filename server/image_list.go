package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages lists images; a filter names one image by reference or ID.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	resp := &runtimeapi.ListImagesResponse{}
	if f := req.GetFilter().GetImage().GetImage(); f != "" {
		if img := s.images.Get(f); img != nil {
			resp.Images = append(resp.Images, toCRIImage(img))
		}
		return resp, nil
	}
	for _, img := range s.images.List() {
		resp.Images = append(resp.Images, toCRIImage(img))
	}
	return resp, nil
}
