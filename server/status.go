package server

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports the runtime ready and the network ready once a CNI config
// exists, so kubelet waits for the network before it schedules pods.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if ready, msg := s.net.Ready(); !ready {
		network.Status = false
		network.Reason = "NetworkPluginNotReady"
		network.Message = msg
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			network,
		}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{
			{Name: "", Features: handlerFeatures()},
			{Name: defaultHandler, Features: handlerFeatures()},
		},
		// oci/spec applies both policies (Strict leaves out the groups of
		// the image's /etc/group) and ContainerStatus reports the user.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		name, file := s.net.NetworkName()
		info, _ := json.Marshal(map[string]any{"root": s.cfg.Root, "stateDir": s.cfg.StateDir, "cniNetwork": name, "cniConfig": file, "cgroupDriver": s.cfg.CgroupDriver, "podCIDR": s.currentPodCIDR()})
		resp.Info = map[string]string{"config": string(info)}
	}
	return resp, nil
}

// handlerFeatures are those of the in-process libcontainer handler:
// recursive read-only mounts ("rro", mount_setattr with AT_RECURSIVE),
// which oci/spec emits for a mount that asks for them, and user namespaces
// for pods (userns_options mode POD, server/pod_userns.go).
func handlerFeatures() *runtimeapi.RuntimeHandlerFeatures {
	return &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true, UserNamespaces: true}
}
