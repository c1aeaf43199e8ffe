package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/pkg/version"
)

// Version reports berth's name and versions.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0", // the kubelet runtime API version
		RuntimeName:       "berth",
		RuntimeVersion:    version.Version,
		RuntimeApiVersion: version.CRIVersion,
	}, nil
}
