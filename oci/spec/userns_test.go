package spec

import (
	"math"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func idmap(c, h, l uint32) []*runtimeapi.IDMapping {
	return []*runtimeapi.IDMapping{{ContainerId: c, HostId: h, Length: l}}
}

func podUserns(m []*runtimeapi.IDMapping) *runtimeapi.UserNamespace {
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}
}

func TestValidatePodUserNamespace(t *testing.T) {
	const f = "config.linux.security_context.namespace_options"
	good := idmap(0, 100000, 65536)
	for _, tc := range []struct {
		name string
		opts *runtimeapi.NamespaceOption
		err  string
	}{
		{name: "no options", opts: nil},
		{name: "no userns options", opts: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}},
		{name: "node", opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}},
		{name: "pod", opts: &runtimeapi.NamespaceOption{UsernsOptions: podUserns(good)}},
		{name: "pod, whole 32-bit range", opts: &runtimeapi.NamespaceOption{UsernsOptions: podUserns(idmap(0, 0, math.MaxUint32))}},
		{
			name: "node with mappings",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: good}},
			err:  f + ".userns_options.uids: mappings are only for mode POD",
		},
		{
			name: "container mode",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}},
			err:  f + ".userns_options.mode: CONTAINER is not supported",
		},
		{
			name: "target mode",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}},
			err:  f + ".userns_options.mode: TARGET is not supported",
		},
		{
			name: "pod without mappings",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}},
			err:  f + ".userns_options.uids: mode POD needs exactly one mapping, got 0",
		},
		{
			name: "two uid mappings",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: podUserns(append(idmap(0, 1000, 100000), idmap(0, 2000, 100000)...))},
			err:  f + ".userns_options.uids: mode POD needs exactly one mapping, got 2",
		},
		{
			name: "gids missing",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: good}},
			err:  f + ".userns_options.gids: mode POD needs exactly one mapping, got 0",
		},
		{
			name: "root not mapped",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: podUserns(idmap(1, 1000, 100000))},
			err:  f + ".userns_options.uids[0].container_id: is 1",
		},
		{
			name: "zero length",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: podUserns(idmap(0, 1000, 0))},
			err:  f + ".userns_options.uids[0].length: must be greater than 0",
		},
		{
			name: "host overflow",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: podUserns(idmap(0, math.MaxUint32-10, 65536))},
			err:  f + ".userns_options.uids[0].length: host IDs",
		},
		{
			name: "gid overflow",
			opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: good, Gids: idmap(0, math.MaxUint32, 2)}},
			err:  f + ".userns_options.gids[0].length: host IDs",
		},
		{
			name: "host network",
			opts: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, UsernsOptions: podUserns(good)},
			err:  f + ".network: NODE cannot be combined",
		},
		{
			name: "host ipc",
			opts: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE, UsernsOptions: podUserns(good)},
			err:  f + ".ipc: NODE cannot be combined",
		},
		{
			name: "host pid",
			opts: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE, UsernsOptions: podUserns(good)},
			err:  f + ".pid: NODE cannot be combined",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantInvalid(t, ValidatePodUserNamespace(f, tc.opts), tc.err)
		})
	}
}

func TestHostID(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	for _, tc := range []struct {
		id, want uint32
		ok       bool
	}{{0, 100000, true}, {65535, 165535, true}, {65536, 0, false}, {1000, 101000, true}} {
		got, ok := HostID(m, tc.id)
		if got != tc.want || ok != tc.ok {
			t.Errorf("HostID(%d) = %d, %v; want %d, %v", tc.id, got, ok, tc.want, tc.ok)
		}
	}
	// The last ID of a range reaching 2^32 must not wrap.
	top := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: math.MaxUint32}}
	if got, ok := HostID(top, math.MaxUint32-1); !ok || got != math.MaxUint32-1 {
		t.Errorf("HostID(max-1) = %d, %v", got, ok)
	}
}

func TestGenerateUserNamespace(t *testing.T) {
	const usernsPath = "/run/berth/pods/4c0ffee/ns/user"
	userns := specs.LinuxNamespace{Type: specs.UserNamespace, Path: usernsPath}
	for _, tc := range []struct {
		name  string
		pod   *runtimeapi.UserNamespace
		ctr   *runtimeapi.UserNamespace
		path  string
		user  *runtimeapi.Int64Value
		group *runtimeapi.Int64Value
		want  bool // the user namespace is in the spec
		err   string
	}{
		{name: "no user namespace", want: false},
		{name: "pod's user namespace", pod: podUserns(idmap(0, 100000, 65536)), path: usernsPath, want: true},
		{
			name: "container repeats the pod's options",
			pod:  podUserns(idmap(0, 100000, 65536)), ctr: podUserns(idmap(0, 100000, 65536)),
			path: usernsPath, want: true,
		},
		{
			name: "container names the mode only",
			pod:  podUserns(idmap(0, 100000, 65536)), ctr: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD},
			path: usernsPath, want: true,
		},
		{
			name: "container with other mappings",
			pod:  podUserns(idmap(0, 100000, 65536)), ctr: podUserns(idmap(0, 200000, 65536)),
			path: usernsPath,
			err:  "linux.security_context.namespace_options.userns_options.uids: the mappings differ from the pod's",
		},
		{
			name: "container asks for the node's users in a pod with its own",
			pod:  podUserns(idmap(0, 100000, 65536)), ctr: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
			path: usernsPath,
			err:  "linux.security_context.namespace_options.userns_options.mode: NODE differs from the pod's POD",
		},
		{
			name: "container names the node's users like the pod",
			pod:  &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}, ctr: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
			want: false,
		},
		{
			name: "run as a mapped user",
			pod:  podUserns(idmap(0, 100000, 65536)), path: usernsPath,
			user: int64v(1000), group: int64v(2000), want: true,
		},
		{
			name: "run as an unmapped user",
			pod:  podUserns(idmap(0, 100000, 65536)), path: usernsPath,
			user: int64v(70000),
			err:  "linux.security_context.run_as_user: user 70000 is not mapped",
		},
		{
			name: "run as an unmapped group",
			pod:  podUserns(idmap(0, 100000, 65536)), path: usernsPath,
			user: int64v(0), group: int64v(65536),
			err: "linux.security_context.run_as_group: group 65536 is not mapped",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := busyboxInput()
			in.Pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = tc.pod
			sc := in.Container.Linux.SecurityContext
			if sc == nil {
				sc = &runtimeapi.LinuxContainerSecurityContext{}
				in.Container.Linux.SecurityContext = sc
			}
			sc.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER, UsernsOptions: tc.ctr}
			sc.RunAsUser, sc.RunAsGroup = tc.user, tc.group
			in.Namespaces.User = tc.path
			res, err := Generate(in)
			if wantInvalid(t, err, tc.err) {
				return
			}
			got := slices.Contains(res.Spec.Linux.Namespaces, userns)
			if got != tc.want {
				t.Fatalf("user namespace in spec = %v, want %v: %v", got, tc.want, res.Spec.Linux.Namespaces)
			}
			for _, ns := range res.Spec.Linux.Namespaces {
				if ns.Type == specs.UserNamespace && !tc.want {
					t.Fatalf("unexpected user namespace %v", ns)
				}
			}
			// runc takes the mappings from the namespace it joins; giving
			// them twice only makes it warn.
			if res.Spec.Linux.UIDMappings != nil || res.Spec.Linux.GIDMappings != nil {
				t.Errorf("spec carries mappings %v %v beside the namespace path", res.Spec.Linux.UIDMappings, res.Spec.Linux.GIDMappings)
			}
		})
	}
}

func TestGenerateUserNamespacePathUnknown(t *testing.T) {
	in := busyboxInput()
	in.Pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = podUserns(idmap(0, 100000, 65536))
	_, err := Generate(in)
	wantErr(t, err, "the pod's user namespace path is not known")
}
