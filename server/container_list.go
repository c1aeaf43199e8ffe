package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers matching every filter given: ID (or
// prefix), pod, state and labels. States come from the records, which the
// monitors' answers keep current.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range s.store.Containers("") {
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.PodID, f.GetPodSandboxId()) {
			continue
		}
		if c.State != "exited" {
			if fresh, err := s.refreshContainer(ctx, c.ID); err == nil {
				c = fresh
			}
		}
		if f.GetState() != nil && f.GetState().GetState() != criState(c.State) {
			continue
		}
		cfg := c.Config()
		if !labelsMatch(cfg.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id:           c.ID,
			PodSandboxId: c.PodID,
			Metadata:     cfg.GetMetadata(),
			Image:        &runtimeapi.ImageSpec{Image: c.ImageRef},
			ImageRef:     c.ImageID,
			ImageId:      c.ImageID,
			State:        criState(c.State),
			CreatedAt:    c.CreatedAt.UnixNano(),
			Labels:       cfg.GetLabels(),
			Annotations:  cfg.GetAnnotations(),
		})
	}
	return resp, nil
}
