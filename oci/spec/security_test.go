package spec

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProtectedPaths(t *testing.T) {
	type sc = runtimeapi.LinuxContainerSecurityContext
	for _, tc := range []struct {
		name                   string
		sc                     *sc
		privileged             bool
		wantMasked, wantRdonly []string
		err                    string
	}{
		{name: "defaults", wantMasked: defaultMaskedPaths, wantRdonly: defaultReadonlyPaths},
		{
			name:       "request lists",
			sc:         &sc{MaskedPaths: []string{"/proc/kcore", "/proc/x/"}, ReadonlyPaths: []string{"/proc/sys"}},
			wantMasked: []string{"/proc/kcore", "/proc/x"},
			wantRdonly: []string{"/proc/sys"},
		},
		{name: "privileged has none", sc: &sc{MaskedPaths: []string{"/proc/kcore"}}, privileged: true},
		{name: "relative masked path", sc: &sc{MaskedPaths: []string{"proc/kcore"}}, err: `linux.security_context.masked_paths[0]: "proc/kcore" is not an absolute path`},
		{name: "relative readonly path", sc: &sc{ReadonlyPaths: []string{"/ok", "sys"}}, err: `linux.security_context.readonly_paths[1]: "sys" is not an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			masked, rdonly, err := protectedPaths(tc.sc, tc.privileged)
			if wantInvalid(t, err, tc.err) {
				return
			}
			if !slices.Equal(masked, tc.wantMasked) || !slices.Equal(rdonly, tc.wantRdonly) {
				t.Fatalf("masked %v readonly %v, want %v %v", masked, rdonly, tc.wantMasked, tc.wantRdonly)
			}
		})
	}
}

func TestApparmorProfile(t *testing.T) {
	type sc = runtimeapi.LinuxContainerSecurityContext
	prof := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *sc {
		return &sc{Apparmor: &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}}
	}
	for _, tc := range []struct {
		name                  string
		sc                    *sc
		privileged, enabled   bool
		wantName, wantApplied string
		err                   string
	}{
		{name: "none, disabled"},
		{name: "none, enabled: default", enabled: true, wantApplied: "berth-default"},
		{name: "runtime default, disabled", sc: prof(runtimeapi.SecurityProfile_RuntimeDefault, ""), wantName: "runtime/default"},
		{name: "runtime default, enabled", sc: prof(runtimeapi.SecurityProfile_RuntimeDefault, ""), enabled: true, wantName: "runtime/default", wantApplied: "berth-default"},
		{name: "unconfined, enabled", sc: prof(runtimeapi.SecurityProfile_Unconfined, ""), enabled: true, wantName: "unconfined"},
		{name: "localhost, enabled", sc: prof(runtimeapi.SecurityProfile_Localhost, "k8s-nginx"), enabled: true, wantName: "localhost/k8s-nginx", wantApplied: "k8s-nginx"},
		{name: "localhost, privileged", sc: prof(runtimeapi.SecurityProfile_Localhost, "k8s-nginx"), enabled: true, privileged: true, wantName: "localhost/k8s-nginx"},
		{
			name: "localhost, disabled",
			sc:   prof(runtimeapi.SecurityProfile_Localhost, "k8s-nginx"),
			err:  `linux.security_context.apparmor: profile "k8s-nginx" requested but AppArmor is not enabled on this node`,
		},
		{name: "localhost without ref", sc: prof(runtimeapi.SecurityProfile_Localhost, ""), enabled: true, err: "linux.security_context.apparmor.localhost_ref: empty"},
		{name: "unknown type", sc: prof(5, ""), err: "linux.security_context.apparmor.profile_type: unknown profile type 5"},
		{name: "deprecated default", sc: &sc{ApparmorProfile: "runtime/default"}, wantName: "runtime/default"},
		{name: "deprecated localhost", sc: &sc{ApparmorProfile: "localhost/p"}, enabled: true, wantName: "localhost/p", wantApplied: "p"},
		{name: "deprecated localhost, disabled", sc: &sc{ApparmorProfile: "localhost/p"}, err: "linux.security_context.apparmor: profile \"p\" requested"},
		{name: "deprecated empty localhost", sc: &sc{ApparmorProfile: "localhost/"}, err: "linux.security_context.apparmor_profile: no profile name"},
		{name: "deprecated garbage", sc: &sc{ApparmorProfile: "strict"}, err: `linux.security_context.apparmor_profile: "strict" is not`},
		{
			name:     "struct wins over string",
			sc:       &sc{Apparmor: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, ApparmorProfile: "localhost/p"},
			wantName: "unconfined",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, applied, err := apparmorProfile(tc.sc, tc.privileged, tc.enabled, "berth-default")
			if wantInvalid(t, err, tc.err) {
				return
			}
			if name != tc.wantName || applied != tc.wantApplied {
				t.Fatalf("got %q, %q; want %q, %q", name, applied, tc.wantName, tc.wantApplied)
			}
		})
	}
}
