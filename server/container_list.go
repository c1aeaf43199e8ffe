package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/server/store"
)

// ListContainers lists containers matching every filter given: ID (or
// prefix), pod, state and labels. States come from the records, which the
// monitors' answers keep current.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	s.refreshPods(ctx)
	for _, c := range s.store.Containers("") {
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.PodID, f.GetPodSandboxId()) {
			continue
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

// refreshPods updates every live container's record with one List call to
// each pod's monitor, rather than one call per container, so listing many
// containers stays cheap.
func (s *Server) refreshPods(ctx context.Context) {
	byPod := map[string][]*store.Container{}
	for _, c := range s.store.Containers("") {
		if c.State != store.ContainerExited {
			byPod[c.PodID] = append(byPod[c.PodID], c)
		}
	}
	for podID, ctrs := range byPod {
		pod, err := s.store.Pod(podID)
		if err != nil {
			continue
		}
		client, err := s.shimFor(pod)
		var states []shim.ContainerState
		if err == nil {
			states, err = client.List(ctx)
		}
		if err != nil {
			// A monitor that does not answer: each container's own
			// refresh says why.
			for _, c := range ctrs {
				s.refreshContainer(ctx, c.ID)
			}
			continue
		}
		known := map[string]shim.ContainerState{}
		for _, st := range states {
			known[st.ID] = st
		}
		for _, c := range ctrs {
			st, ok := known[c.ID]
			if !ok {
				s.refreshContainer(ctx, c.ID)
				continue
			}
			s.updateState(c.ID, st)
		}
	}
}
