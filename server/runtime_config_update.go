package server

import (
	"context"
	"net"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateRuntimeConfig takes the node's pod CIDR from kubelet. berth's pod
// addresses come from the CNI config, so the CIDR is only kept, logged and
// shown in Status's verbose info, for comparing the two.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if err := validatePodCIDR(cidr); err != nil {
		return nil, err
	}
	if old, _ := s.podCIDR.Swap(cidr).(string); old != cidr {
		s.log.WithField("podCIDR", cidr).Info("pod CIDR updated")
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// validatePodCIDR accepts empty or CIDRs; a dual-stack kubelet sends its
// node's CIDRs joined by commas.
func validatePodCIDR(cidr string) error {
	if cidr == "" {
		return nil
	}
	for _, c := range strings.Split(cidr, ",") {
		if _, _, err := net.ParseCIDR(strings.TrimSpace(c)); err != nil {
			return invalid("runtime_config.network_config.pod_cidr", "%q is not a CIDR (or comma-separated CIDRs)", cidr)
		}
	}
	return nil
}

// currentPodCIDR is the last pod CIDR kubelet set, or "".
func (s *Server) currentPodCIDR() string {
	v, _ := s.podCIDR.Load().(string)
	return v
}
