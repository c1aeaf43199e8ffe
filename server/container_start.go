package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

// StartContainer runs the user's process of a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	defer s.ctrLocks.lock(c.ID)()
	if c.State != store.ContainerCreated {
		return nil, status.Errorf(codes.FailedPrecondition, "container_id: container %s is %s, not created", c.ID, c.State)
	}
	pod, err := s.store.Pod(c.PodID)
	if err != nil {
		return nil, err
	}
	client, err := s.shimFor(pod)
	if err != nil {
		return nil, shimError(err)
	}
	if err := client.Start(ctx, c.ID); err != nil {
		return nil, shimError(err)
	}
	started := false
	rec, err := s.store.UpdateContainer(c.ID, func(r *store.Container) error {
		// A status poll may have recorded the exit of a short-lived
		// container already; that record stays.
		if r.State == store.ContainerCreated {
			r.State = store.ContainerRunning
			r.StartedAt = time.Now()
			started = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if started {
		s.emitContainerEvent(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, rec)
	}
	s.metrics.ObserveContainerStart(time.Since(c.CreatedAt))
	return &runtimeapi.StartContainerResponse{}, nil
}
