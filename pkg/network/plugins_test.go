package network

import (
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func chain(types_ ...string) *libcni.NetworkConfigList {
	l := &libcni.NetworkConfigList{Name: "n", Bytes: []byte("full")}
	for _, t := range types_ {
		l.Plugins = append(l.Plugins, &libcni.PluginConfig{Network: &types.PluginConf{Type: t}})
	}
	return l
}

func typesOf(l *libcni.NetworkConfigList) []string {
	var out []string
	for _, p := range l.Plugins {
		out = append(out, p.Network.Type)
	}
	return out
}

func TestPluginsFor(t *testing.T) {
	full := chain("bridge", "portmap", "loopback")
	noPorts := PodNetwork{}
	withPorts := PodNetwork{PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80}}}
	containerPortOnly := PodNetwork{PortMappings: []PortMapping{{ContainerPort: 80}}}

	if got := typesOf(pluginsFor(full, noPorts)); !slices.Equal(got, []string{"bridge"}) {
		t.Errorf("no port mappings: %v", got)
	}
	if got := typesOf(pluginsFor(full, containerPortOnly)); !slices.Equal(got, []string{"bridge"}) {
		t.Errorf("mappings without a host port: %v", got)
	}
	if got := typesOf(pluginsFor(full, withPorts)); !slices.Equal(got, []string{"bridge", "portmap"}) {
		t.Errorf("with a host port: %v", got)
	}
	if got := pluginsFor(full, noPorts); string(got.Bytes) != "full" {
		t.Error("the cached bytes must stay the whole list, so DEL runs every plugin")
	}
	if len(full.Plugins) != 3 {
		t.Error("the shared list was changed")
	}
	if got := typesOf(pluginsFor(chain("loopback"), noPorts)); !slices.Equal(got, []string{"loopback"}) {
		t.Errorf("a list of only loopback must stay runnable: %v", got)
	}
}
