package server

import (
	"net/netip"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/pkg/hostport"
	"github.com/berth-runtime/berth/server/store"
)

// openHostPorts starts carrying the pod's host ports on 127.0.0.1 (see
// package hostport for why berthd does that and not the CNI plugin).
func (s *Server) openHostPorts(pod *store.Pod, cfg *runtimeapi.PodSandboxConfig) error {
	ip := firstIPv4(pod.IPs)
	if !ip.IsValid() || len(cfg.GetPortMappings()) == 0 {
		return nil
	}
	return s.ports.Open(pod.ID, ip, hostPortMappings(cfg))
}

// reopenHostPorts is openHostPorts for a pod that was running before
// berthd started; a port taken in the meantime is logged, not fatal.
func (s *Server) reopenHostPorts(pod *store.Pod) {
	if pod.Phase != store.PodReady {
		return
	}
	if err := s.openHostPorts(pod, pod.Config()); err != nil {
		s.log.WithError(err).Warnf("pod %s: host ports on 127.0.0.1", pod.ID)
	}
}

func hostPortMappings(cfg *runtimeapi.PodSandboxConfig) []hostport.Mapping {
	var ms []hostport.Mapping
	for _, pm := range cfg.GetPortMappings() {
		ms = append(ms, hostport.Mapping{
			Protocol:      protocolName(pm.GetProtocol()),
			HostIP:        pm.GetHostIp(),
			HostPort:      pm.GetHostPort(),
			ContainerPort: pm.GetContainerPort(),
		})
	}
	return ms
}

func firstIPv4(ips []string) netip.Addr {
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() {
			return ip
		}
	}
	return netip.Addr{}
}
