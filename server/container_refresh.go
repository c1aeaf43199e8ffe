package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/server/store"
)

// refreshContainer brings a container's record up to date with its
// monitor. When the monitor is gone, the state it last wrote to disk is
// used; a container it left running is reported exited with code 255,
// since nothing watches it any more and its exit would never be learned.
func (s *Server) refreshContainer(ctx context.Context, id string) (*store.Container, error) {
	c, err := s.store.Container(id)
	if err != nil {
		return nil, err
	}
	if c.State == store.ContainerExited {
		return c, nil // final
	}
	pod, err := s.store.Pod(c.PodID)
	if err != nil {
		return nil, err
	}
	var st shim.ContainerState
	client, err := s.shimFor(pod)
	if err == nil {
		st, err = client.State(ctx, c.ID)
	}
	switch {
	case err == nil:
	case errors.Is(err, shim.ErrShimGone):
		st, err = shim.ReadState(pod.ShimDir, c.ID)
		if err != nil || st.Status != shim.StatusStopped {
			st.Status = shim.StatusStopped
			st.ExitCode = 255
			st.Message = "the pod's monitor (berth-shim) is gone; the container's exit cannot be known"
			if st.FinishedAt.IsZero() {
				st.FinishedAt = c.StartedAt
			}
		}
	case errors.Is(err, shim.ErrNotFound):
		st = shim.ContainerState{Status: shim.StatusStopped, ExitCode: 255, Message: "the pod's monitor does not know this container"}
	default:
		return nil, shimError(err)
	}
	return s.updateState(c.ID, st)
}

func applyState(r *store.Container, st shim.ContainerState) {
	switch st.Status {
	case shim.StatusCreated:
		r.State = store.ContainerCreated
	case shim.StatusRunning:
		r.State = store.ContainerRunning
	case shim.StatusStopped:
		r.State = store.ContainerExited
	default:
		r.State = store.ContainerUnknown
	}
	if st.Pid != 0 {
		r.Pid = st.Pid
	}
	if !st.StartedAt.IsZero() {
		r.StartedAt = st.StartedAt
	}
	if r.State != store.ContainerExited {
		return
	}
	r.FinishedAt = st.FinishedAt
	r.ExitCode = st.ExitCode
	r.Message = st.Message
	switch {
	case st.OOMKilled:
		r.Reason = "OOMKilled"
	case st.ExitCode == 0:
		r.Reason = "Completed"
	default:
		r.Reason = "Error"
	}
}

// runningContainer returns a running container, current per its monitor,
// and the monitor's client; anything else is FailedPrecondition.
func (s *Server) runningContainer(ctx context.Context, id string) (*store.Container, *shim.Client, error) {
	c, err := s.refreshContainer(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if c.State != store.ContainerRunning {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "container_id: container %s is not running", c.ID)
	}
	pod, err := s.store.Pod(c.PodID)
	if err != nil {
		return nil, nil, err
	}
	client, err := s.shimFor(pod)
	if err != nil {
		return nil, nil, shimError(err)
	}
	return c, client, nil
}
