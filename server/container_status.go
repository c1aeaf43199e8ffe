package server

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

// ContainerStatus reports a container's state as its monitor knows it.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c, err = s.refreshContainer(ctx, c.ID); err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.containerStatus(c)}
	if req.GetVerbose() {
		info, err := json.Marshal(map[string]any{"pid": c.Pid, "bundle": c.Bundle, "rootfs": c.Rootfs, "podId": c.PodID, "layers": c.Layers, "apparmorProfile": c.AppArmor, "processLabel": c.ProcessLabel})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func criState(state string) runtimeapi.ContainerState {
	switch state {
	case store.ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case store.ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case store.ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func (s *Server) containerStatus(c *store.Container) *runtimeapi.ContainerStatus {
	cfg := c.Config()
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    cfg.GetMetadata(),
		State:       criState(c.State),
		CreatedAt:   c.CreatedAt.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: c.ImageID, Annotations: cfg.GetImage().GetAnnotations()},
		ImageRef:    c.ImageID,
		ImageId:     c.ImageID,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      cfg.GetMounts(),
		LogPath:     c.LogPath,
		Reason:      c.Reason,
		Message:     c.Message,
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: c.UID, Gid: c.GID, SupplementalGroups: c.Groups,
		}},
	}
	if img := s.images.Get(c.ImageID); img != nil {
		st.Image.Image = c.ImageRef
		if len(img.RepoDigests) > 0 {
			st.ImageRef = img.RepoDigests[0]
		}
	}
	if r := containerResources(c); r != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: r}
	}
	if c.State != store.ContainerCreated {
		st.StartedAt = c.StartedAt.UnixNano()
	}
	if c.State == store.ContainerExited {
		st.FinishedAt = c.FinishedAt.UnixNano()
		st.ExitCode = c.ExitCode
	}
	return st
}
