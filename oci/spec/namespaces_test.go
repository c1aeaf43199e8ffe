package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func podWith(opts *runtimeapi.NamespaceOption) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: opts},
	}}
}

func containerWith(opts *runtimeapi.NamespaceOption) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{
		SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: opts},
	}}
}

func TestNamespaces(t *testing.T) {
	const (
		POD       = runtimeapi.NamespaceMode_POD
		CONTAINER = runtimeapi.NamespaceMode_CONTAINER
		NODE      = runtimeapi.NamespaceMode_NODE
		TARGET    = runtimeapi.NamespaceMode_TARGET
	)
	paths := Namespaces{Net: "/run/berth/ns/net/p", IPC: "/run/berth/ns/ipc/p", UTS: "/run/berth/ns/uts/p", PID: "/proc/42/ns/pid"}
	net := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: paths.Net}
	ipc := specs.LinuxNamespace{Type: specs.IPCNamespace, Path: paths.IPC}
	uts := specs.LinuxNamespace{Type: specs.UTSNamespace, Path: paths.UTS}
	podPID := specs.LinuxNamespace{Type: specs.PIDNamespace, Path: paths.PID}
	newPID := specs.LinuxNamespace{Type: specs.PIDNamespace}
	mnt := specs.LinuxNamespace{Type: specs.MountNamespace}
	cg := specs.LinuxNamespace{Type: specs.CgroupNamespace}

	for _, tc := range []struct {
		name       string
		pod, ctr   *runtimeapi.NamespaceOption
		paths      *Namespaces
		cgroupV2   bool
		want       []specs.LinuxNamespace
		host       [3]bool // net, ipc, uts
		err        string
		notInvalid bool
	}{
		{
			name: "pod namespaces, own pid",
			pod:  &runtimeapi.NamespaceOption{Pid: CONTAINER},
			ctr:  &runtimeapi.NamespaceOption{Pid: CONTAINER},
			want: []specs.LinuxNamespace{net, ipc, uts, newPID, mnt},
		},
		{
			name:     "cgroup namespace on v2",
			ctr:      &runtimeapi.NamespaceOption{Pid: CONTAINER},
			cgroupV2: true,
			want:     []specs.LinuxNamespace{net, ipc, uts, newPID, mnt, cg},
		},
		{
			name: "shared pod pid",
			pod:  &runtimeapi.NamespaceOption{Pid: POD},
			ctr:  &runtimeapi.NamespaceOption{Pid: POD},
			want: []specs.LinuxNamespace{net, ipc, uts, podPID, mnt},
		},
		{
			name: "host everything",
			pod:  &runtimeapi.NamespaceOption{Network: NODE, Ipc: NODE, Pid: NODE},
			ctr:  &runtimeapi.NamespaceOption{Network: NODE, Ipc: NODE, Pid: NODE},
			want: []specs.LinuxNamespace{mnt},
			host: [3]bool{true, true, true},
		},
		{
			name: "host network only keeps host uts",
			pod:  &runtimeapi.NamespaceOption{Network: NODE, Pid: CONTAINER},
			want: []specs.LinuxNamespace{ipc, newPID, mnt},
			host: [3]bool{true, false, true},
		},
		{
			name: "pod options win for network and ipc",
			pod:  &runtimeapi.NamespaceOption{Network: NODE, Ipc: NODE},
			ctr:  &runtimeapi.NamespaceOption{Network: POD, Ipc: POD, Pid: CONTAINER},
			want: []specs.LinuxNamespace{newPID, mnt},
			host: [3]bool{true, true, true},
		},
		{
			name: "target pid",
			ctr:  &runtimeapi.NamespaceOption{Pid: TARGET, TargetId: "abc"},
			want: []specs.LinuxNamespace{net, ipc, uts, podPID, mnt},
		},
		{
			name: "target without id",
			ctr:  &runtimeapi.NamespaceOption{Pid: TARGET},
			err:  "linux.security_context.namespace_options.target_id: required when pid is TARGET",
		},
		{
			name: "target network",
			pod:  &runtimeapi.NamespaceOption{Network: TARGET},
			err:  "linux.security_context.namespace_options.network: mode TARGET is not supported",
		},
		{
			name: "user namespace the pod does not have",
			ctr:  &runtimeapi.NamespaceOption{Pid: CONTAINER, UsernsOptions: &runtimeapi.UserNamespace{Mode: POD}},
			err:  "linux.security_context.namespace_options.userns_options.mode: POD differs from the pod's NODE",
		},
		{
			name: "host user namespace is fine",
			ctr:  &runtimeapi.NamespaceOption{Pid: CONTAINER, UsernsOptions: &runtimeapi.UserNamespace{Mode: NODE}},
			want: []specs.LinuxNamespace{net, ipc, uts, newPID, mnt},
		},
		{
			name:       "pod path missing",
			ctr:        &runtimeapi.NamespaceOption{Pid: CONTAINER},
			paths:      &Namespaces{IPC: paths.IPC, UTS: paths.UTS},
			err:        "the pod's network namespace path is not known",
			notInvalid: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := paths
			if tc.paths != nil {
				p = *tc.paths
			}
			in := Input{Namespaces: p, CgroupV2: tc.cgroupV2, Container: containerWith(tc.ctr)}
			if tc.pod != nil {
				in.Pod = podWith(tc.pod)
			}
			got, err := namespaces(in)
			if tc.notInvalid {
				wantErr(t, err, tc.err)
				return
			}
			if wantInvalid(t, err, tc.err) {
				return
			}
			if !slices.Equal(got.list, tc.want) {
				t.Errorf("namespaces = %v, want %v", got.list, tc.want)
			}
			if h := [3]bool{got.hostNet, got.hostIPC, got.hostUTS}; h != tc.host {
				t.Errorf("host net/ipc/uts = %v, want %v", h, tc.host)
			}
		})
	}
}
