package server

import (
	"context"
	"errors"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

// StopPodSandbox stops every container of the pod and tears down its
// network. A pod that is gone or already stopped is a success, as CRI
// requires.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	pod, err := s.store.Pod(req.GetPodSandboxId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.podLocks.lock(pod.ID)()
	if err := s.stopPod(ctx, pod); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (s *Server) stopPod(ctx context.Context, pod *store.Pod) error {
	for _, c := range s.store.Containers(pod.ID) {
		// Stopping a pod kills its containers at once; kubelet stops them
		// gracefully itself before, when it wants to.
		if err := s.stopContainer(ctx, c, 0); err != nil {
			return err
		}
	}
	if pod.Phase == store.PodStopped {
		return nil
	}
	s.ports.Close(pod.ID)
	cfg := pod.Config()
	if pod.NetNS != "" {
		if err := s.net.Teardown(ctx, podNetwork(pod, cfg)); err != nil {
			return err
		}
	}
	_, err := s.store.UpdatePod(pod.ID, func(p *store.Pod) error {
		p.Phase = store.PodStopped
		p.IPs = nil
		return nil
	})
	return err
}
