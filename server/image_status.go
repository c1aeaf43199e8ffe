package server

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageStatus describes one image. An unknown image is an empty answer,
// not an error, as CRI specifies. With verbose, info["info"] carries the
// image config and how the image is stored.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img := s.images.Get(req.GetImage().GetImage())
	if img == nil {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if req.GetVerbose() {
		info := map[string]any{
			"manifestDigest": img.ManifestDigest,
			"chainIDs":       img.ChainIDs(),
			"layers":         img.Layers,
			"pulled":         img.Pulled,
		}
		if img.IndexDigest != "" {
			info["indexDigest"] = img.IndexDigest
		}
		if cfg, err := s.images.Config(img); err == nil {
			info["imageSpec"] = cfg
		} else {
			info["imageSpecError"] = err.Error()
		}
		data, err := json.Marshal(info)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(data)}
	}
	return resp, nil
}
