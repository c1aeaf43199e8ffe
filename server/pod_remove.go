package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/server/store"
)

// RemovePodSandbox removes a pod and everything of it: containers,
// network, namespaces, files, /dev/shm, monitor and cgroup. Removing a pod
// that is gone is a success.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	pod, err := s.store.Pod(req.GetPodSandboxId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.podLocks.lock(pod.ID)()
	if err := s.removePod(ctx, pod); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// removePod also cleans up pods left half-made by a crash, so every step
// tolerates what is already gone.
func (s *Server) removePod(ctx context.Context, pod *store.Pod) error {
	if pod.Phase != store.PodCreating {
		if err := s.stopPod(ctx, pod); err != nil {
			return err
		}
	} else if err := s.net.Teardown(ctx, podNetwork(pod, pod.Config())); err != nil {
		return err
	}
	for _, c := range s.store.Containers(pod.ID) {
		if err := s.removeContainer(ctx, c); err != nil {
			return err
		}
	}
	stopPIDHolder(pod)
	c, _ := s.shimFor(pod)
	if err := s.stopShim(pod, c, pod.ShimPID); err != nil {
		return err
	}
	// Paths by convention rather than from the record: a pod cut short in
	// RunPodSandbox has them without having recorded them.
	if err := unmountAll(filepath.Join(pod.Dir, "shm")); err != nil {
		return err
	}
	nsDir := filepath.Join(pod.Dir, "ns")
	if err := removeNamespaces(map[int]string{0: filepath.Join(nsDir, "net"), 1: filepath.Join(nsDir, "ipc"), 2: filepath.Join(nsDir, "uts"), 3: usernsPin(pod.Dir)}); err != nil {
		return err
	}
	if pod.OwnCgroup {
		if err := cgroups.Remove(pod.CgroupPath, true); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(pod.Dir); err != nil {
		return err
	}
	return s.store.DeletePod(pod.ID)
}
