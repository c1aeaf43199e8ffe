package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

// ReopenContainerLog makes the monitor reopen a running container's log
// file, after kubelet rotated it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.refreshContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c.State != store.ContainerRunning {
		return nil, status.Errorf(codes.FailedPrecondition, "container_id: container %s is not running", c.ID)
	}
	pod, err := s.store.Pod(c.PodID)
	if err != nil {
		return nil, err
	}
	client, err := s.shimFor(pod)
	if err != nil {
		return nil, shimError(err)
	}
	if err := client.ReopenLog(ctx, c.ID); err != nil {
		return nil, shimError(err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
