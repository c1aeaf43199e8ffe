package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists pods matching every filter given: ID (or prefix),
// state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, p := range s.store.Pods() {
		if p.Phase == "creating" {
			continue // not a pod yet
		}
		if f.GetId() != "" && !strings.HasPrefix(p.ID, f.GetId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != podState(p) {
			continue
		}
		cfg := p.Config()
		if !labelsMatch(cfg.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id:             p.ID,
			Metadata:       cfg.GetMetadata(),
			State:          podState(p),
			CreatedAt:      p.CreatedAt.UnixNano(),
			Labels:         cfg.GetLabels(),
			Annotations:    cfg.GetAnnotations(),
			RuntimeHandler: p.Handler,
		})
	}
	return resp, nil
}

// labelsMatch: every selector label is present with the same value.
func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
