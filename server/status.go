package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports the runtime ready and the network ready once a CNI config
// exists, so kubelet waits for the network before it schedules pods.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	cfg := s.config()
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	confs, err := cniConfigs(cfg.Network.ConfDir)
	if err != nil || len(confs) == 0 {
		network.Status = false
		network.Reason = "NetworkPluginNotReady"
		network.Message = fmt.Sprintf("no CNI network config found in %s", cfg.Network.ConfDir)
		if err != nil && !os.IsNotExist(err) {
			network.Message = fmt.Sprintf("reading CNI config dir %s: %v", cfg.Network.ConfDir, err)
		}
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			network,
		}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{}}},
		Features:        &runtimeapi.RuntimeFeatures{},
	}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{"root": cfg.Root, "stateDir": cfg.StateDir, "cniConfigs": confs, "cgroupDriver": cfg.CgroupDriver})
		resp.Info = map[string]string{"config": string(info)}
	}
	return resp, nil
}

// cniConfigs lists the network config files CNI would load from dir.
func cniConfigs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".conf", ".conflist", ".json":
			if !e.IsDir() {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
