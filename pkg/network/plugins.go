package network

import "github.com/containernetworking/cni/libcni"

// pluginsFor returns the plugin chain ADD runs for one pod. Two plugins
// are left out because running them would change nothing while costing an
// exec each (a few milliseconds of every pod start): "loopback", since
// Setup brings the pod's lo up itself, and "portmap" for a pod without port
// mappings, which portmap would only return from. The result cached for
// DEL keeps the full list; DEL of either plugin with nothing set up is a
// no-op.
func pluginsFor(list *libcni.NetworkConfigList, pod PodNetwork) *libcni.NetworkConfigList {
	hasPorts := false
	for _, pm := range pod.PortMappings {
		if pm.HostPort > 0 {
			hasPorts = true
		}
	}
	kept := make([]*libcni.PluginConfig, 0, len(list.Plugins))
	for _, p := range list.Plugins {
		switch {
		case p.Network.Type == "loopback":
		case p.Network.Type == "portmap" && !hasPorts:
		default:
			kept = append(kept, p)
		}
	}
	if len(kept) == len(list.Plugins) || len(kept) == 0 {
		return list
	}
	cp := *list
	cp.Plugins = kept
	return &cp
}
