//go:build cgo

package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/configs/validate"
	"github.com/opencontainers/runc/libcontainer/specconv"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestSpecconvAccepts feeds generated specs to libcontainer's own
// conversion and validation, the path berth runs them through. specconv
// needs cgo (it links the libcontainer packages), hence the build tag; it
// does not need the seccomp tag, which only matters for starting.
func TestSpecconvAccepts(t *testing.T) {
	// validate checks that the rootfs exists and that a joined network
	// namespace is not the host's: give it a directory and a file that is
	// not /proc/self/ns/net.
	rootfs := t.TempDir()
	netns := filepath.Join(t.TempDir(), "net")
	if err := os.WriteFile(netns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() Input {
		in := busyboxInput()
		in.RootfsPath = rootfs
		in.Namespaces.Net = netns
		return in
	}

	for _, tc := range []struct {
		name  string
		mod   func(in *Input)
		check func(t *testing.T, c *configs.Config)
	}{
		{
			name: "busybox",
			mod:  func(*Input) {},
			check: func(t *testing.T, c *configs.Config) {
				if c.Seccomp == nil || len(c.Seccomp.Architectures) != 1 || c.Hostname != "busybox" || c.OomScoreAdj == nil || *c.OomScoreAdj != 0 {
					t.Errorf("seccomp %+v hostname %q oom %v", c.Seccomp, c.Hostname, c.OomScoreAdj)
				}
				if c.Cgroups.Path != "/kubepods/besteffort/pod0c7b7e2a-1111-2222-3333-444455556666/c0ffee" || c.Cgroups.Resources.CpuQuota != 50000 || c.Cgroups.Resources.PidsLimit == nil {
					t.Errorf("cgroups %+v", c.Cgroups)
				}
				if len(c.MaskPaths) == 0 || len(c.ReadonlyPaths) == 0 || c.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
					t.Errorf("mask %v readonly %v sysctl %v", c.MaskPaths, c.ReadonlyPaths, c.Sysctl)
				}
			},
		},
		{
			name: "privileged",
			mod: func(in *Input) {
				in.Pod.Linux.SecurityContext.Privileged = true
				in.Container.Linux.SecurityContext.Privileged = true
			},
			check: func(t *testing.T, c *configs.Config) {
				if c.Seccomp != nil || len(c.MaskPaths) != 0 || len(c.Capabilities.Bounding) < 30 {
					t.Errorf("seccomp %v masked %v caps %d", c.Seccomp, c.MaskPaths, len(c.Capabilities.Bounding))
				}
			},
		},
		{
			name: "host namespaces",
			mod: func(in *Input) {
				o := in.Pod.Linux.SecurityContext.NamespaceOptions
				o.Network, o.Ipc = runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE
				in.Container.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
				in.Pod.Linux.Sysctls = nil
			},
			check: func(t *testing.T, c *configs.Config) {
				if c.Hostname != "" || c.Namespaces.Contains(configs.NEWNET) || c.Namespaces.Contains(configs.NEWUTS) || c.Namespaces.Contains(configs.NEWPID) {
					t.Errorf("hostname %q namespaces %+v", c.Hostname, c.Namespaces)
				}
			},
		},
		{
			name: "user, devices, mounts, caps, tty",
			mod: func(in *Input) {
				sc := in.Container.Linux.SecurityContext
				sc.RunAsUser, sc.RunAsGroup, sc.SupplementalGroups = int64v(1000), int64v(3000), []int64{4000}
				sc.ReadonlyRootfs, sc.NoNewPrivs = true, true
				sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddAmbientCapabilities: []string{"NET_BIND_SERVICE"}}
				in.Container.Tty = true
				in.Container.Devices = []*runtimeapi.Device{{HostPath: "/dev/snd", ContainerPath: "/dev/snd", Permissions: "rw"}}
				in.Container.Mounts = append(in.Container.Mounts,
					&runtimeapi.Mount{ContainerPath: "/ro", HostPath: "/srv", Readonly: true, RecursiveReadOnly: true, MountOptions: []string{"nosuid", "nodev"}},
					&runtimeapi.Mount{ContainerPath: "/shared", HostPath: "/mnt", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL})
				in.Image.Volumes = map[string]struct{}{"/data": {}}
				in.VolumeSource = func(p string) string { return "/var/lib/berth/volumes/c0ffee" + p }
			},
			check: func(t *testing.T, c *configs.Config) {
				if !c.Readonlyfs || !c.NoNewPrivileges || len(c.Capabilities.Ambient) != 1 || len(c.Devices) < 2 {
					t.Errorf("readonly %v nnp %v caps %+v devices %d", c.Readonlyfs, c.NoNewPrivileges, c.Capabilities, len(c.Devices))
				}
				var rro bool
				for _, m := range c.Mounts {
					if m.Destination == "/ro" {
						rro = m.RecAttr != nil && m.Flags&1 != 0 // MS_RDONLY
					}
				}
				if !rro {
					t.Error("/ro is not recursively read-only")
				}
			},
		},
		{
			name: "localhost seccomp profile",
			mod: func(in *Input) {
				in.Container.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/p.json"}
				in.LoadProfile = func(string) ([]byte, error) { return []byte(dockerProfile), nil }
			},
			check: func(t *testing.T, c *configs.Config) {
				if c.Seccomp == nil || len(c.Seccomp.Syscalls) != 1 {
					t.Errorf("seccomp %+v", c.Seccomp)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.mod(&in)
			res, err := Generate(in)
			if err != nil {
				t.Fatal(err)
			}
			c, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "c0ffee", Spec: res.Spec})
			if err != nil {
				t.Fatalf("specconv refused the spec: %v", err)
			}
			if err := validate.Validate(c); err != nil {
				t.Fatalf("libcontainer refused the config: %v", err)
			}
			tc.check(t, c)
		})
	}
}

// TestSpecconvSystemdPath checks that a systemd cgroups path passes through
// in the form libcontainer's systemd driver expects.
func TestSpecconvSystemdPath(t *testing.T) {
	in := busyboxInput()
	in.RootfsPath = t.TempDir()
	in.CgroupsPath = "kubepods-besteffort-pod0c7b7e2a.slice:berth:c0ffee"
	res, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	c, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{UseSystemdCgroup: true, Spec: res.Spec})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cgroups.Parent != "kubepods-besteffort-pod0c7b7e2a.slice" || c.Cgroups.ScopePrefix != "berth" || c.Cgroups.Name != "c0ffee" {
		t.Fatalf("cgroups %+v", c.Cgroups)
	}
}
