package spec

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	podNetNS = "/run/berth/ns/net/4c0ffee"
	podIPCNS = "/run/berth/ns/ipc/4c0ffee"
	podUTSNS = "/run/berth/ns/uts/4c0ffee"
	podPIDNS = "/proc/4242/ns/pid"
)

// busyboxPod is the sandbox config kubelet sends for a plain pod.
func busyboxPod() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "busybox", Uid: "0c7b7e2a-1111-2222-3333-444455556666", Namespace: "default", Attempt: 0},
		Hostname:     "busybox",
		LogDirectory: "/var/log/pods/default_busybox_0c7b7e2a-1111-2222-3333-444455556666",
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}},
		Labels:       map[string]string{"io.kubernetes.pod.name": "busybox", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": "0c7b7e2a-1111-2222-3333-444455556666", "run": "busybox"},
		Annotations:  map[string]string{"kubernetes.io/config.seen": "2025-01-01T00:00:00Z", "kubernetes.io/config.source": "api"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/besteffort/pod0c7b7e2a-1111-2222-3333-444455556666",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
			Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
		},
	}
}

// busyboxContainer is the container config kubelet sends for
// `kubectl run busybox --image=busybox -- sleep 3600` with a CPU limit.
func busyboxContainer() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "busybox", Attempt: 0},
		Image:    &runtimeapi.ImageSpec{Image: "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741", UserSpecifiedImage: "busybox"},
		Args:     []string{"sleep", "3600"},
		Envs: []*runtimeapi.KeyValue{
			kv("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
			kv("KUBERNETES_SERVICE_PORT", "443"),
			kv("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
		},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: "/var/lib/kubelet/pods/0c7b7e2a-1111-2222-3333-444455556666/volumes/kubernetes.io~projected/kube-api-access-x7k2p", Readonly: true},
			{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/0c7b7e2a-1111-2222-3333-444455556666/etc-hosts"},
			{ContainerPath: "/dev/termination-log", HostPath: "/var/lib/kubelet/pods/0c7b7e2a-1111-2222-3333-444455556666/containers/busybox/6f1c2d3e"},
		},
		Labels: map[string]string{
			"io.kubernetes.container.name": "busybox",
			"io.kubernetes.pod.name":       "busybox",
			"io.kubernetes.pod.namespace":  "default",
			"io.kubernetes.pod.uid":        "0c7b7e2a-1111-2222-3333-444455556666",
		},
		Annotations: map[string]string{
			"io.kubernetes.container.hash":                     "6b4d1f2a",
			"io.kubernetes.container.restartCount":             "0",
			"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
			"io.kubernetes.container.terminationMessagePolicy": "File",
			"io.kubernetes.pod.terminationGracePeriod":         "30",
		},
		LogPath: "busybox/0.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				CpuPeriod:          100000,
				CpuQuota:           50000,
				CpuShares:          512,
				MemoryLimitInBytes: 134217728,
				OomScoreAdj:        -997,
				HugepageLimits:     []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}, {PageSize: "1GB", Limit: 0}},
			},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				RunAsUser:        int64v(0),
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				Apparmor:         &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
		},
	}
}

func busyboxImage() ocispec.ImageConfig {
	return ocispec.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"sh"}}
}

func busyboxInput() Input {
	return Input{
		Container:   busyboxContainer(),
		Pod:         busyboxPod(),
		Image:       busyboxImage(),
		Users:       testUsers,
		RootfsPath:  "/var/lib/berth/containers/c0ffee/rootfs",
		Namespaces:  Namespaces{Net: podNetNS, IPC: podIPCNS, UTS: podUTSNS},
		CgroupsPath: "/kubepods/besteffort/pod0c7b7e2a-1111-2222-3333-444455556666/c0ffee",
		PidsLimit:   4096,
		// As on the target machine: hugetlb only on the unified hierarchy.
		HugetlbController: false,
		PodMounts: []specs.Mount{
			{Destination: "/etc/resolv.conf", Type: "bind", Source: "/var/lib/berth/pods/4c0ffee/resolv.conf", Options: []string{"rbind", "rprivate", "ro"}},
			{Destination: "/etc/hostname", Type: "bind", Source: "/var/lib/berth/pods/4c0ffee/hostname", Options: []string{"rbind", "rprivate", "ro"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/berth/pods/4c0ffee/hosts", Options: []string{"rbind", "rprivate", "ro"}},
			{Destination: "/dev/shm", Type: "bind", Source: "/var/lib/berth/pods/4c0ffee/shm", Options: []string{"rbind", "rprivate", "rw"}},
		},
		HostCapabilities: hostCaps,
		DeviceInfo:       fakeDeviceInfo,
		ListDevices:      fakeListDevices,
		LoadProfile:      func(string) ([]byte, error) { return nil, errors.New("unexpected profile load") },
		Hostname:         "busybox",
		MaxNoFile:        20000,
	}
}

// TestGenerateBusybox is the end-to-end golden case: what kubelet sends for
// a busybox pod on this kind of node.
func TestGenerateBusybox(t *testing.T) {
	res, err := Generate(busyboxInput())
	if err != nil {
		t.Fatal(err)
	}
	s := res.Spec
	p := s.Process

	if s.Version != specs.Version || s.Root.Path != "/var/lib/berth/containers/c0ffee/rootfs" || s.Root.Readonly {
		t.Errorf("version %s root %+v", s.Version, s.Root)
	}
	if !slices.Equal(p.Args, []string{"sleep", "3600"}) || p.Cwd != "/" || p.Terminal {
		t.Errorf("args %q cwd %q terminal %v", p.Args, p.Cwd, p.Terminal)
	}
	wantEnv := []string{
		"HOSTNAME=busybox",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"KUBERNETES_SERVICE_HOST=10.96.0.1",
		"KUBERNETES_SERVICE_PORT=443",
		"KUBERNETES_PORT=tcp://10.96.0.1:443",
	}
	if !slices.Equal(p.Env, wantEnv) {
		t.Errorf("env %q", p.Env)
	}
	if p.User.UID != 0 || p.User.GID != 0 || !slices.Equal(p.User.AdditionalGids, []uint32{0, 10}) {
		t.Errorf("user %+v", p.User)
	}
	if res.User.UID != 0 || !slices.Equal(res.User.AdditionalGids, p.User.AdditionalGids) {
		t.Errorf("result user %+v", res.User)
	}
	if want := slices.Sorted(slices.Values(defaultCapabilities)); !slices.Equal(p.Capabilities.Bounding, want) ||
		!slices.Equal(p.Capabilities.Effective, want) || !slices.Equal(p.Capabilities.Permitted, want) ||
		len(p.Capabilities.Inheritable) != 0 || len(p.Capabilities.Ambient) != 0 {
		t.Errorf("capabilities %+v", p.Capabilities)
	}
	if len(res.WithheldCapabilities) != 0 {
		t.Errorf("withheld %v", res.WithheldCapabilities)
	}
	if p.NoNewPrivileges || p.ApparmorProfile != "" || p.SelinuxLabel != "" || s.Linux.MountLabel != "" {
		t.Errorf("nnp %v apparmor %q selinux %q/%q", p.NoNewPrivileges, p.ApparmorProfile, p.SelinuxLabel, s.Linux.MountLabel)
	}
	if res.AppArmorProfile != "runtime/default" {
		t.Errorf("apparmor result %q", res.AppArmorProfile)
	}
	if *p.OOMScoreAdj != 0 {
		t.Errorf("oom_score_adj %d, want -997 clamped to 0", *p.OOMScoreAdj)
	}
	if !slices.Equal(p.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 20000, Soft: 20000}}) {
		t.Errorf("rlimits %v", p.Rlimits)
	}
	if s.Hostname != "busybox" {
		t.Errorf("hostname %q", s.Hostname)
	}
	if !maps.Equal(s.Annotations, busyboxContainer().Annotations) {
		t.Errorf("annotations %v", s.Annotations)
	}

	wantMounts := []string{
		"/proc", "/dev", "/sys",
		"/dev/pts", "/dev/mqueue", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/shm", "/dev/termination-log",
		"/sys/fs/cgroup",
		"/var/run/secrets/kubernetes.io/serviceaccount",
	}
	if got := destinations(s.Mounts); !slices.Equal(got, wantMounts) {
		t.Errorf("mounts\n got %q\nwant %q", got, wantMounts)
	}
	if m, _ := findMount(s.Mounts, "/etc/hosts"); !strings.HasPrefix(m.Source, "/var/lib/kubelet/") || !slices.Equal(m.Options, []string{"rbind", "rprivate", "rw"}) {
		t.Errorf("/etc/hosts %+v: kubelet's mount should replace the pod's", m)
	}
	if m, _ := findMount(s.Mounts, "/var/run/secrets/kubernetes.io/serviceaccount"); !slices.Contains(m.Options, "ro") {
		t.Errorf("service account mount %+v", m)
	}

	l := s.Linux
	wantNS := []specs.LinuxNamespace{
		{Type: specs.NetworkNamespace, Path: podNetNS},
		{Type: specs.IPCNamespace, Path: podIPCNS},
		{Type: specs.UTSNamespace, Path: podUTSNS},
		{Type: specs.PIDNamespace},
		{Type: specs.MountNamespace},
	}
	if !slices.Equal(l.Namespaces, wantNS) {
		t.Errorf("namespaces %v", l.Namespaces)
	}
	if l.CgroupsPath != "/kubepods/besteffort/pod0c7b7e2a-1111-2222-3333-444455556666/c0ffee" {
		t.Errorf("cgroups path %q", l.CgroupsPath)
	}
	r := l.Resources
	if *r.CPU.Period != 100000 || *r.CPU.Quota != 50000 || *r.CPU.Shares != 512 || *r.Memory.Limit != 134217728 || r.Memory.Swap != nil || *r.Pids.Limit != 4096 {
		t.Errorf("resources cpu %+v memory %+v pids %+v", r.CPU, r.Memory, r.Pids)
	}
	if len(r.HugepageLimits) != 0 || len(r.Devices) != 1 || r.Devices[0].Allow || r.Devices[0].Access != "rwm" {
		t.Errorf("hugepages %+v devices %+v", r.HugepageLimits, r.Devices)
	}
	if len(l.Devices) != 0 {
		t.Errorf("devices %+v", l.Devices)
	}
	if !maps.Equal(l.Sysctl, map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}) {
		t.Errorf("sysctl %v", l.Sysctl)
	}
	if !slices.Equal(l.MaskedPaths, defaultMaskedPaths) || !slices.Equal(l.ReadonlyPaths, defaultReadonlyPaths) {
		t.Errorf("masked %v readonly %v", l.MaskedPaths, l.ReadonlyPaths)
	}
	if l.Seccomp == nil || l.Seccomp.DefaultAction != specs.ActErrno || !hasSyscall(l.Seccomp, "read", specs.ActAllow) || len(l.Seccomp.Architectures) != 1 {
		t.Errorf("seccomp %+v", l.Seccomp)
	}
	if l.RootfsPropagation != "" {
		t.Errorf("rootfs propagation %q", l.RootfsPropagation)
	}
	if len(res.Volumes) != 0 {
		t.Errorf("volumes %v", res.Volumes)
	}

	// The spec must survive a round trip through config.json, which is how
	// the same spec runs under the runc binary.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
}

func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mod        func(in *Input)
		check      func(t *testing.T, r *Result)
		err        string
		notInvalid bool
	}{
		{
			name: "privileged",
			mod: func(in *Input) {
				in.Pod.Linux.SecurityContext.Privileged = true
				in.Container.Linux.SecurityContext.Privileged = true
				in.Container.Linux.SecurityContext.NoNewPrivs = true
				in.AppArmorEnabled = true
				in.AppArmorDefaultProfile = "berth-default"
			},
			check: func(t *testing.T, r *Result) {
				s := r.Spec
				if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 || s.Process.NoNewPrivileges || s.Process.ApparmorProfile != "" {
					t.Errorf("privileged spec still confined: %+v", s.Linux)
				}
				if !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") || slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_RESOURCE") {
					t.Errorf("capabilities %v", s.Process.Capabilities.Bounding)
				}
				if !slices.Equal(r.WithheldCapabilities, []string{"CAP_SYS_RESOURCE"}) {
					t.Errorf("withheld %v", r.WithheldCapabilities)
				}
				if len(s.Linux.Devices) == 0 || !s.Linux.Resources.Devices[0].Allow {
					t.Errorf("devices %v rules %v", s.Linux.Devices, s.Linux.Resources.Devices)
				}
				if m, _ := findMount(s.Mounts, "/sys"); !slices.Contains(m.Options, "rw") {
					t.Errorf("sysfs %v", m.Options)
				}
			},
		},
		{
			name: "privileged container in unprivileged pod",
			mod:  func(in *Input) { in.Container.Linux.SecurityContext.Privileged = true },
			err:  "linux.security_context.privileged: the pod sandbox was not created privileged",
		},
		{
			name: "host network: no hostname, no net sysctls",
			mod: func(in *Input) {
				in.Pod.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
				in.Pod.Linux.Sysctls = map[string]string{"kernel.shmmax": "1"}
			},
			check: func(t *testing.T, r *Result) {
				if r.Spec.Hostname != "" || !slices.Contains(r.Spec.Process.Env, "HOSTNAME=busybox") {
					t.Errorf("hostname %q env %v", r.Spec.Hostname, r.Spec.Process.Env)
				}
				for _, ns := range r.Spec.Linux.Namespaces {
					if ns.Type == specs.NetworkNamespace || ns.Type == specs.UTSNamespace {
						t.Errorf("namespace %v with host network", ns)
					}
				}
			},
		},
		{
			name: "host network rejects net sysctls",
			mod: func(in *Input) {
				in.Pod.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
			},
			err: `sandbox_config.linux.sysctls["net.ipv4.ip_unprivileged_port_start"]: not allowed with the host's network namespace`,
		},
		{
			name: "selinux labels pass through",
			mod: func(in *Input) {
				in.ProcessLabel, in.MountLabel = "system_u:system_r:container_t:s0:c1,c2", "system_u:object_r:container_file_t:s0:c1,c2"
			},
			check: func(t *testing.T, r *Result) {
				if r.Spec.Process.SelinuxLabel != "system_u:system_r:container_t:s0:c1,c2" || r.Spec.Linux.MountLabel != "system_u:object_r:container_file_t:s0:c1,c2" {
					t.Errorf("labels %q %q", r.Spec.Process.SelinuxLabel, r.Spec.Linux.MountLabel)
				}
			},
		},
		{
			name: "user from image, readonly root, tty, workdir, no_new_privs",
			mod: func(in *Input) {
				sc := in.Container.Linux.SecurityContext
				sc.RunAsUser = nil
				sc.ReadonlyRootfs = true
				sc.NoNewPrivs = true
				in.Container.Tty = true
				in.Container.WorkingDir = "/tmp"
				in.Image.User = "user-defined-in-image"
				in.CanLowerOOMScore = true
			},
			check: func(t *testing.T, r *Result) {
				s := r.Spec
				if s.Process.User.UID != 1000 || s.Process.User.GID != 50000 || !s.Root.Readonly || !s.Process.Terminal || s.Process.Cwd != "/tmp" || !s.Process.NoNewPrivileges {
					t.Errorf("process %+v root %+v", s.Process, s.Root)
				}
				if *s.Process.OOMScoreAdj != -997 {
					t.Errorf("oom_score_adj %d", *s.Process.OOMScoreAdj)
				}
			},
		},
		{
			name: "devices and propagation",
			mod: func(in *Input) {
				in.Container.Devices = []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rw"}}
				in.Container.Mounts = append(in.Container.Mounts, &runtimeapi.Mount{ContainerPath: "/mnt/host", HostPath: "/mnt", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER})
			},
			check: func(t *testing.T, r *Result) {
				if len(r.Spec.Linux.Devices) != 1 || len(r.Spec.Linux.Resources.Devices) != 2 || r.Spec.Linux.RootfsPropagation != "rslave" {
					t.Errorf("devices %v rules %v propagation %q", r.Spec.Linux.Devices, r.Spec.Linux.Resources.Devices, r.Spec.Linux.RootfsPropagation)
				}
			},
		},
		{
			name: "cgroup v2 with unified",
			mod: func(in *Input) {
				in.CgroupV2 = true
				in.Container.Linux.Resources.Unified = map[string]string{"memory.oom.group": "1"}
			},
			check: func(t *testing.T, r *Result) {
				if r.Spec.Linux.Resources.Unified["memory.oom.group"] != "1" || r.Spec.Linux.Namespaces[len(r.Spec.Linux.Namespaces)-1].Type != specs.CgroupNamespace {
					t.Errorf("unified %v namespaces %v", r.Spec.Linux.Resources.Unified, r.Spec.Linux.Namespaces)
				}
			},
		},
		{name: "nothing to run", mod: func(in *Input) { in.Container.Args = nil; in.Image.Cmd = nil }, err: "command: no command to run"},
		{name: "unknown user", mod: func(in *Input) {
			in.Container.Linux.SecurityContext.RunAsUser = nil
			in.Container.Linux.SecurityContext.RunAsUsername = "x"
		}, err: `linux.security_context.run_as_username: user "x" not found in the image`},
		{name: "bad capability", mod: func(in *Input) {
			in.Container.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_RESOURCE"}}
		}, err: "linux.security_context.capabilities.add_capabilities: CAP_SYS_RESOURCE is not held"},
		{name: "bad resource", mod: func(in *Input) { in.Container.Linux.Resources.CpuPeriod = 0 }, err: "linux.resources.cpu_quota: set without cpu_period"},
		{name: "bad mount", mod: func(in *Input) { in.Container.Mounts[0].ContainerPath = "" }, err: "mounts[0].container_path: empty"},
		{name: "no container", mod: func(in *Input) { in.Container = nil }, err: "no container config", notInvalid: true},
		{name: "relative rootfs", mod: func(in *Input) { in.RootfsPath = "rootfs" }, err: `rootfs path "rootfs" is not absolute`, notInvalid: true},
		{name: "no host capabilities", mod: func(in *Input) { in.HostCapabilities = nil }, err: "the daemon's capability set is not known", notInvalid: true},
		{
			name: "minimal request",
			mod: func(in *Input) {
				in.Container = &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}}
				in.Pod = nil
				in.Users = nil
				in.Namespaces.PID = podPIDNS // the CRI's default PID mode is POD
			},
			check: func(t *testing.T, r *Result) {
				s := r.Spec
				if !slices.Equal(s.Process.Args, []string{"sh"}) || s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) == 0 || s.Process.User.UID != 0 ||
					s.Linux.Namespaces[3] != (specs.LinuxNamespace{Type: specs.PIDNamespace, Path: podPIDNS}) {
					t.Errorf("spec %+v", s)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := busyboxInput()
			tc.mod(&in)
			r, err := Generate(in)
			if tc.notInvalid {
				wantErr(t, err, tc.err)
				if errors.Is(err, ErrInvalid) {
					t.Fatal("caller error reported as a request error")
				}
				return
			}
			if wantInvalid(t, err, tc.err) {
				return
			}
			tc.check(t, r)
		})
	}
}
