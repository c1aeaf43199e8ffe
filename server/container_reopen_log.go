package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ReopenContainerLog makes the monitor reopen a running container's log
// file, after kubelet rotated it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, client, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := client.ReopenLog(ctx, c.ID); err != nil {
		return nil, shimError(err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
