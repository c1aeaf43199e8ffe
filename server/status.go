package server

import (
	"context"
	"encoding/json"
	"slices"

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
		RuntimeHandlers: s.runtimeHandlers(),
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

// runtimeHandlers lists the built-in handler under both its names, then the
// configured ones by name. An external runtime binary gets neither
// feature: berth does not build the pod's user namespace for it, and
// recursive read-only mounts depend on the binary's version.
func (s *Server) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	hs := []*runtimeapi.RuntimeHandler{
		{Name: "", Features: handlerFeatures()},
		{Name: defaultHandler, Features: handlerFeatures()},
	}
	for _, name := range s.handlerNames() {
		hs = append(hs, &runtimeapi.RuntimeHandler{Name: name, Features: &runtimeapi.RuntimeHandlerFeatures{}})
	}
	return hs
}

// handlerNames are the configured runtime handlers, sorted.
func (s *Server) handlerNames() []string {
	names := make([]string, 0, len(s.cfg.Runtime.Handlers))
	for name := range s.cfg.Runtime.Handlers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
