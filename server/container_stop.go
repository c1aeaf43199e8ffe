package server

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/moby/sys/signal"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/server/store"
)

// StopContainer sends the image's stop signal (SIGTERM by default), waits
// up to the timeout, then kills. Stopping a stopped or missing container
// succeeds.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(ctx, c, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func (s *Server) stopContainer(ctx context.Context, c *store.Container, timeout time.Duration) error {
	defer s.ctrLocks.lock(c.ID)()
	st, err := s.refreshContainer(ctx, c.ID)
	if err != nil {
		return err
	}
	pod, err := s.store.Pod(c.PodID)
	if err != nil {
		return err
	}
	if st.State == store.ContainerExited || st.State == store.ContainerUnknown {
		if !shimAlive(pod.ShimPID, pod.ShimDir) {
			// No monitor stopped it: its processes may run on, unwatched.
			return s.killCgroup(pod, c)
		}
		return nil
	}
	client, err := s.shimFor(pod)
	if err != nil {
		return shimError(err)
	}
	if st.State == store.ContainerRunning && timeout > 0 {
		sig := s.stopSignal(c)
		if err := client.Signal(ctx, c.ID, sig, false); err != nil && !errors.Is(err, shim.ErrNotRunning) {
			return shimError(err)
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := client.Wait(wctx, c.ID)
		cancel()
		if err == nil {
			_, err = s.refreshContainer(ctx, c.ID)
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	// Kill every process of the container, not only its init: a created
	// container's init, or children that ignore their parent's death.
	if err := client.Signal(ctx, c.ID, syscall.SIGKILL, true); err != nil && !errors.Is(err, shim.ErrNotRunning) {
		return shimError(err)
	}
	wctx, cancel := context.WithTimeout(ctx, shimCallTimeout)
	defer cancel()
	if _, err := client.Wait(wctx, c.ID); err != nil && !errors.Is(err, shim.ErrNotRunning) {
		return shimError(err)
	}
	_, err = s.refreshContainer(ctx, c.ID)
	return err
}

// stopSignal is the image's StopSignal, else SIGTERM.
func (s *Server) stopSignal(c *store.Container) syscall.Signal {
	if img := s.images.Get(c.ImageID); img != nil {
		if cfg, err := s.images.Config(img); err == nil && cfg.Config.StopSignal != "" {
			if sig, err := signal.ParseSignal(cfg.Config.StopSignal); err == nil {
				return sig
			}
		}
	}
	return syscall.SIGTERM
}

// killCgroup kills whatever runs in a container's cgroup and removes it;
// used when the monitor that would have done so is gone.
func (s *Server) killCgroup(pod *store.Pod, c *store.Container) error {
	if s.cfg.CgroupDriver != "cgroupfs" {
		return nil // systemd owns the scope; it goes with its processes
	}
	path, err := cgroups.ContainerPath(s.cfg.CgroupDriver, pod.CgroupPath, c.ID)
	if err != nil {
		return err
	}
	return cgroups.Remove(path, true)
}
