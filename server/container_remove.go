package server

import (
	"context"
	"errors"
	"os"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/rootfs"
	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/server/store"
)

// RemoveContainer removes a container, killing it if it runs, with its
// writable layer, mounts and cgroup. Removing a missing one succeeds.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (s *Server) removeContainer(ctx context.Context, c *store.Container) error {
	if err := s.stopContainer(ctx, c, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	defer s.ctrLocks.lock(c.ID)()
	if pod, err := s.store.Pod(c.PodID); err == nil {
		if client, err := s.shimFor(pod); err == nil {
			if err := client.Delete(ctx, c.ID, true); err != nil && !errors.Is(err, shim.ErrNotFound) && !errors.Is(err, shim.ErrShimGone) {
				return shimError(err)
			}
		}
		// With the monitor gone, libcontainer never destroyed the cgroup:
		// kill what is left in it and remove it.
		if err := s.killCgroup(pod, c); err != nil {
			return err
		}
	}
	if err := unmountImageVolumes(c.Bundle); err != nil {
		return err
	}
	if err := rootfs.Unmount(c.Rootfs); err != nil {
		return err
	}
	// Idmapped layers a crash left attached must go before the bundle is
	// removed recursively.
	if err := rootfs.UnmountLowers(c.Rootfs); err != nil {
		return err
	}
	if err := errors.Join(os.RemoveAll(c.Bundle), os.RemoveAll(c.DataDir)); err != nil {
		return err
	}
	// The deleted event carries the container's last status.
	last, err := s.store.Container(c.ID)
	if err != nil {
		last = c
	}
	if err := s.store.DeleteContainer(c.ID); err != nil {
		return err
	}
	s.emitContainerEvent(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, last)
	s.releaseContainer(c.ID, c.Layers)
	releaseSELinux(c.ProcessLabel)
	return nil
}
