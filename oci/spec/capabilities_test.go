package spec

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCapabilities(t *testing.T) {
	type sc = runtimeapi.LinuxContainerSecurityContext
	type capr = runtimeapi.Capability
	defaults := slices.Sorted(slices.Values(defaultCapabilities))
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	with := func(list []string, add ...string) []string {
		return slices.Sorted(slices.Values(append(slices.Clone(list), add...)))
	}
	allHeld := slices.Sorted(slices.Values(hostCaps))

	for _, tc := range []struct {
		name     string
		sc       *sc
		host     []string
		want     []string
		ambient  []string
		withheld []string
		err      string
	}{
		{name: "default set", want: defaults},
		{name: "default set, daemon lacks MKNOD", host: without(hostCaps, "CAP_MKNOD"), want: without(defaults, "CAP_MKNOD"), withheld: []string{"CAP_MKNOD"}},
		{name: "add by bare name, any case", sc: &sc{Capabilities: &capr{AddCapabilities: []string{"net_admin", "SYS_TIME"}}}, want: with(defaults, "CAP_NET_ADMIN", "CAP_SYS_TIME")},
		{name: "add with prefix", sc: &sc{Capabilities: &capr{AddCapabilities: []string{"CAP_SYS_ADMIN"}}}, want: with(defaults, "CAP_SYS_ADMIN")},
		{name: "drop", sc: &sc{Capabilities: &capr{DropCapabilities: []string{"NET_RAW", "cap_mknod"}}}, want: without(defaults, "CAP_NET_RAW", "CAP_MKNOD")},
		{name: "add and drop same: drop wins", sc: &sc{Capabilities: &capr{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"NET_ADMIN"}}}, want: defaults},
		{name: "drop ALL", sc: &sc{Capabilities: &capr{DropCapabilities: []string{"ALL"}}}, want: []string{}},
		{name: "drop ALL add one", sc: &sc{Capabilities: &capr{DropCapabilities: []string{"all"}, AddCapabilities: []string{"NET_BIND_SERVICE"}}}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add ALL gets only held", sc: &sc{Capabilities: &capr{AddCapabilities: []string{"ALL"}}}, want: allHeld, withheld: []string{"CAP_SYS_RESOURCE"}},
		{name: "add ALL drop one", sc: &sc{Capabilities: &capr{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"SYS_ADMIN"}}}, want: without(allHeld, "CAP_SYS_ADMIN"), withheld: []string{"CAP_SYS_RESOURCE"}},
		{name: "add ALL drop the unheld one", sc: &sc{Capabilities: &capr{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"SYS_RESOURCE"}}}, want: allHeld},
		{name: "add ALL and drop ALL", sc: &sc{Capabilities: &capr{AddCapabilities: []string{"ALL", "KILL"}, DropCapabilities: []string{"ALL"}}}, want: []string{"CAP_KILL"}},
		{name: "privileged: all held", sc: &sc{Privileged: true, Capabilities: &capr{DropCapabilities: []string{"ALL"}}}, want: allHeld, withheld: []string{"CAP_SYS_RESOURCE"}},
		{name: "privileged with every capability held", sc: &sc{Privileged: true}, host: knownCapabilities, want: slices.Sorted(slices.Values(knownCapabilities))},
		{name: "privileged grants host caps this list does not know", sc: &sc{Privileged: true}, host: []string{"CAP_CHOWN", "CAP_FUTURE"}, want: []string{"CAP_CHOWN", "CAP_FUTURE"}, withheld: without(slices.Sorted(slices.Values(knownCapabilities)), "CAP_CHOWN")},
		{
			name:    "ambient",
			sc:      &sc{Capabilities: &capr{DropCapabilities: []string{"ALL"}, AddAmbientCapabilities: []string{"net_bind_service"}}},
			want:    []string{"CAP_NET_BIND_SERVICE"},
			ambient: []string{"CAP_NET_BIND_SERVICE"},
		},
		{
			name: "explicit unheld capability",
			sc:   &sc{Capabilities: &capr{AddCapabilities: []string{"SYS_RESOURCE"}}},
			err:  "linux.security_context.capabilities.add_capabilities: CAP_SYS_RESOURCE is not held by the container runtime",
		},
		{
			name: "explicit unheld ambient capability",
			sc:   &sc{Capabilities: &capr{AddAmbientCapabilities: []string{"SYS_RESOURCE"}}},
			err:  "linux.security_context.capabilities.add_ambient_capabilities: CAP_SYS_RESOURCE is not held",
		},
		{
			name: "unknown add",
			sc:   &sc{Capabilities: &capr{AddCapabilities: []string{"KILL", "FLY"}}},
			err:  `linux.security_context.capabilities.add_capabilities[1]: unknown capability "FLY"`,
		},
		{
			name: "unknown drop",
			sc:   &sc{Capabilities: &capr{DropCapabilities: []string{"SYS_ADMN"}}},
			err:  `linux.security_context.capabilities.drop_capabilities[0]: unknown capability "SYS_ADMN"`,
		},
		{
			name: "ambient ALL",
			sc:   &sc{Capabilities: &capr{AddAmbientCapabilities: []string{"ALL"}}},
			err:  "linux.security_context.capabilities.add_ambient_capabilities[0]: ALL is not allowed here",
		},
		{
			name: "ambient and dropped",
			sc:   &sc{Capabilities: &capr{AddAmbientCapabilities: []string{"KILL"}, DropCapabilities: []string{"KILL"}}},
			err:  "linux.security_context.capabilities.add_ambient_capabilities: CAP_KILL is also dropped",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			if host == nil {
				host = hostCaps
			}
			got, withheld, err := capabilities(tc.sc, host)
			if wantInvalid(t, err, tc.err) {
				return
			}
			for name, set := range map[string][]string{"bounding": got.Bounding, "effective": got.Effective, "permitted": got.Permitted} {
				if !slices.Equal(set, tc.want) {
					t.Errorf("%s = %v, want %v", name, set, tc.want)
				}
			}
			if !slices.Equal(got.Ambient, tc.ambient) || !slices.Equal(got.Inheritable, tc.ambient) {
				t.Errorf("ambient %v inheritable %v, want %v", got.Ambient, got.Inheritable, tc.ambient)
			}
			if !slices.Equal(withheld, tc.withheld) {
				t.Errorf("withheld = %v, want %v", withheld, tc.withheld)
			}
		})
	}
}

func TestNormalizeCapability(t *testing.T) {
	for in, want := range map[string]string{
		"chown": "CAP_CHOWN", "CAP_chown": "CAP_CHOWN", " Kill ": "CAP_KILL", "all": "ALL", "ALL": "ALL", "cap_sys_admin": "CAP_SYS_ADMIN",
	} {
		if got := normalizeCapability(in); got != want {
			t.Errorf("normalizeCapability(%q) = %q, want %q", in, got, want)
		}
	}
}
