package server

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

// PodSandboxStatus describes a pod; with verbose, info["info"] holds how
// berthd set it up.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	pod, err := s.store.Pod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatus(pod)}
	if req.GetVerbose() {
		info, err := json.Marshal(map[string]any{
			"phase":      pod.Phase,
			"netns":      pod.NetNS,
			"ipcns":      pod.IPCNS,
			"utsns":      pod.UTSNS,
			"dir":        pod.Dir,
			"shm":        pod.ShmPath,
			"cgroup":     pod.CgroupPath,
			"monitorPid": pod.ShimPID,
			"cni":        json.RawMessage(orNull(pod.CNI)),
			"resources":  podResourcesInfo(pod, s.cfg.CgroupDriver),
		})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// podState is READY only while the pod is set up and its monitor lives:
// without the monitor no container can start in it, and kubelet replaces a
// pod only when told it is not ready.
func podState(p *store.Pod) runtimeapi.PodSandboxState {
	if p.Phase == store.PodReady && shimAlive(p.ShimPID, p.ShimDir) {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func podStatus(p *store.Pod) *runtimeapi.PodSandboxStatus {
	cfg := p.Config()
	st := &runtimeapi.PodSandboxStatus{
		Id:             p.ID,
		Metadata:       cfg.GetMetadata(),
		State:          podState(p),
		CreatedAt:      p.CreatedAt.UnixNano(),
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: p.Handler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	if len(p.IPs) > 0 {
		st.Network.Ip = p.IPs[0]
		for _, ip := range p.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}
