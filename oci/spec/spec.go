package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Namespaces holds the paths of the namespaces a container joins. The
// CRI request says which mode each namespace is in; these say where the
// pod's namespaces are.
type Namespaces struct {
	// Net, IPC and UTS are the pod's pinned namespaces. They are used when
	// the request puts that namespace in POD mode and ignored in NODE mode.
	Net, IPC, UTS string
	// PID is the pod's PID namespace when the request's PID mode is POD,
	// or the target container's when it is TARGET.
	PID string
	// User is the pod's pinned user namespace; used when the pod's
	// userns_options mode is POD (see userns.go).
	User string
}

// HostDevice describes a device node on the host, as the caller found it.
type HostDevice struct {
	Path string
	// Type is 'c' (character), 'b' (block) or 'p' (FIFO). It is 0 for
	// anything else; Mode then tells a directory (os.ModeDir) apart.
	Type         byte
	Major, Minor int64
	Mode         os.FileMode
	UID, GID     uint32
}

// Input is everything Generate needs. Container, RootfsPath and
// HostCapabilities are required.
type Input struct {
	Container *runtimeapi.ContainerConfig
	Pod       *runtimeapi.PodSandboxConfig
	Image     ocispec.ImageConfig
	// Users reads the image's /etc/passwd and /etc/group. Nil means the
	// image has neither.
	Users UserDB

	RootfsPath string
	Namespaces Namespaces
	// CgroupsPath is an absolute cgroupfs path or a systemd
	// "slice:prefix:name", passed through as given.
	CgroupsPath string
	// CgroupV2 is true on a unified (pure cgroup v2) host. Only there does
	// the container get its own cgroup namespace.
	CgroupV2 bool
	// HugetlbController says the cgroup manager can set hugetlb limits
	// (the controller is in the hierarchy libcontainer uses). Without it
	// the request's hugepage limits are left out. On this kind of hybrid
	// host hugetlb is only on the unified hierarchy, out of reach of the
	// v1 manager.
	HugetlbController bool
	// PidsLimit is the pod-level pids limit; 0 leaves it unset and -1 means
	// unlimited.
	PidsLimit int64

	// PodMounts are the per-pod files the caller prepared: /etc/hosts,
	// /etc/resolv.conf, /etc/hostname, /dev/shm. A request mount at the
	// same destination replaces one of them.
	PodMounts []specs.Mount
	// VolumeSource maps an anonymous image volume (a path inside the
	// container) to the host directory the caller will create for it.
	// Nil means volumes are only reported in Result.Volumes, not mounted.
	VolumeSource func(containerPath string) string
	// ImageMounts maps the index of a request mount with Mount.image to
	// the host path where the caller mounted that image read-only (its
	// sub path included); see ImageMounts.
	ImageMounts map[int]string

	// HostCapabilities is the daemon's own bounding set. A container never
	// gets a capability outside it.
	HostCapabilities []string

	// DeviceInfo stats a host path named by a request device.
	DeviceInfo func(hostPath string) (HostDevice, error)
	// ListDevices lists the device nodes under a host directory, recursively.
	// Privileged containers get every device under /dev; a request device
	// naming a directory gets every device under it.
	ListDevices func(dir string) ([]HostDevice, error)

	// SeccompProfileRoot resolves a relative Localhost seccomp profile
	// reference; absolute references are used as given.
	SeccompProfileRoot string
	// LoadProfile reads a Localhost seccomp profile.
	LoadProfile func(path string) ([]byte, error)

	// AppArmorEnabled says the host enforces AppArmor. Without it no
	// profile is set in the spec, and a Localhost profile is refused.
	AppArmorEnabled bool
	// AppArmorDefaultProfile is the loaded profile that RuntimeDefault maps
	// to when AppArmor is enabled.
	AppArmorDefaultProfile string

	// ProcessLabel and MountLabel come from label.InitLabels and are set
	// only when non-empty: libcontainer refuses labels when SELinux is off.
	ProcessLabel, MountLabel string

	// Hostname is the pod's hostname. It is set in the spec only when the
	// container has the pod's (not the node's) UTS namespace, and exported
	// as $HOSTNAME either way.
	Hostname string

	// CanLowerOOMScore says the daemon holds CAP_SYS_RESOURCE. Without it
	// the kernel refuses a negative oom_score_adj and the start fails.
	CanLowerOOMScore bool
	// MaxNoFile is the daemon's own RLIMIT_NOFILE hard limit; 0 leaves the
	// container's limit inherited.
	MaxNoFile uint64
}

// User is the identity of the container's first process, as
// ContainerStatus.user reports it.
type User struct {
	UID, GID uint32
	// AdditionalGids are the supplementary groups: sorted, without
	// duplicates, and including GID.
	AdditionalGids []uint32
}

// CRI converts u for ContainerStatus.user.
func (u User) CRI() *runtimeapi.ContainerUser {
	groups := make([]int64, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int64(g)
	}
	return &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
		Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups,
	}}
}

// Volume is an anonymous volume declared by the image.
type Volume struct {
	// ContainerPath is clean and absolute.
	ContainerPath string
	// HostPath is what Input.VolumeSource returned; empty when it is nil.
	HostPath string
}

// Result is the generated spec plus what the caller needs to know about it.
type Result struct {
	Spec *specs.Spec
	User User
	// Volumes are the image's anonymous volumes not shadowed by a mount,
	// sorted by path. The caller backs each with a directory.
	Volumes []Volume
	// AppArmorProfile is the requested profile in the deprecated string
	// form ("runtime/default", "unconfined", "localhost/<name>"), empty when
	// none was requested, whether or not it was applied.
	AppArmorProfile string
	// WithheldCapabilities are capabilities that the privileged flag, "ALL"
	// or the default set would have granted but the daemon does not hold.
	WithheldCapabilities []string
}

// Generate builds the OCI spec for a CRI CreateContainer request.
func Generate(in Input) (*Result, error) {
	c := in.Container
	if c == nil {
		return nil, errors.New("no container config")
	}
	if in.RootfsPath == "" || !filepath.IsAbs(in.RootfsPath) {
		return nil, fmt.Errorf("rootfs path %q is not absolute", in.RootfsPath)
	}
	if len(in.HostCapabilities) == 0 {
		return nil, errors.New("the daemon's capability set is not known")
	}
	sc := c.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.Pod.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, fieldErr("linux.security_context.privileged", "the pod sandbox was not created privileged")
	}

	ns, err := namespaces(in)
	if err != nil {
		return nil, err
	}

	args, err := processArgs(c.GetCommand(), c.GetArgs(), in.Image)
	if err != nil {
		return nil, err
	}
	env, err := processEnv(in.Hostname, in.Image.Env, c.GetEnvs())
	if err != nil {
		return nil, err
	}
	cwd, err := workingDir(c.GetWorkingDir(), in.Image.WorkingDir)
	if err != nil {
		return nil, err
	}
	user, err := resolveUser(sc, in.Image.User, in.Users)
	if err != nil {
		return nil, err
	}
	if err := checkMapped(user, in.Pod); err != nil {
		return nil, err
	}
	caps, withheld, err := capabilities(sc, in.HostCapabilities)
	if err != nil {
		return nil, err
	}

	mounts, volumes, err := buildMounts(in, privileged)
	if err != nil {
		return nil, err
	}
	devices, deviceRules, err := buildDevices(c.GetDevices(), privileged, in.DeviceInfo, in.ListDevices)
	if err != nil {
		return nil, err
	}
	resources, err := buildResources(c.GetLinux().GetResources(), in.PidsLimit, in.CgroupV2, in.HugetlbController)
	if err != nil {
		return nil, err
	}
	resources.Devices = deviceRules
	oom, err := oomScoreAdj(c.GetLinux().GetResources().GetOomScoreAdj(), in.CanLowerOOMScore)
	if err != nil {
		return nil, err
	}
	sysctls := in.Pod.GetLinux().GetSysctls()
	if err := validateSysctls("sandbox_config.linux.sysctls", sysctls, ns.hostNet, ns.hostIPC); err != nil {
		return nil, err
	}

	seccomp, err := seccompProfile(sc, privileged, caps.Bounding, in.SeccompProfileRoot, in.LoadProfile)
	if err != nil {
		return nil, err
	}
	apparmorName, apparmorApplied, err := apparmorProfile(sc, privileged, in.AppArmorEnabled, in.AppArmorDefaultProfile)
	if err != nil {
		return nil, err
	}
	masked, readonly, err := protectedPaths(sc, privileged)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: c.GetTty(),
			User: specs.User{
				UID:            user.UID,
				GID:            user.GID,
				AdditionalGids: slices.Clone(user.AdditionalGids),
			},
			Args:            args,
			Env:             env,
			Cwd:             cwd,
			Capabilities:    caps,
			Rlimits:         rlimits(in.MaxNoFile),
			NoNewPrivileges: sc.GetNoNewPrivs() && !privileged,
			ApparmorProfile: apparmorApplied,
			OOMScoreAdj:     &oom,
			SelinuxLabel:    in.ProcessLabel,
		},
		Root: &specs.Root{
			Path:     in.RootfsPath,
			Readonly: sc.GetReadonlyRootfs(),
		},
		Mounts:      mounts,
		Annotations: copyMap(c.GetAnnotations()),
		Linux: &specs.Linux{
			Sysctl:            copyMap(sysctls),
			Resources:         resources,
			CgroupsPath:       in.CgroupsPath,
			Namespaces:        ns.list,
			Devices:           devices,
			Seccomp:           seccomp,
			RootfsPropagation: rootfsPropagation(c.GetMounts()),
			MaskedPaths:       masked,
			ReadonlyPaths:     readonly,
			MountLabel:        in.MountLabel,
		},
	}
	if !ns.hostUTS {
		s.Hostname = in.Hostname
	}
	return &Result{
		Spec:                 s,
		User:                 user,
		Volumes:              volumes,
		AppArmorProfile:      apparmorName,
		WithheldCapabilities: withheld,
	}, nil
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
