package spec

import (
	"errors"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nativeSeccompArch is the seccomp name of the architecture berthd was
// built for.
var nativeSeccompArch = map[string]specs.Arch{
	"386":      specs.ArchX86,
	"amd64":    specs.ArchX86_64,
	"arm":      specs.ArchARM,
	"arm64":    specs.ArchAARCH64,
	"loong64":  specs.ArchLOONGARCH64,
	"mips64":   specs.ArchMIPS64,
	"mips64le": specs.ArchMIPSEL64,
	"mipsle":   specs.ArchMIPSEL,
	"ppc64":    specs.ArchPPC64,
	"ppc64le":  specs.ArchPPC64LE,
	"riscv64":  specs.ArchRISCV64,
	"s390x":    specs.ArchS390X,
}[runtime.GOARCH]

// seccompProfile returns the container's seccomp filter: none for a
// privileged container, else what security_context.seccomp asks, else
// what the deprecated seccomp_profile_path asks. Neither set means
// unconfined, as the CRI defines. caps is the bounding set: the default
// profile allows some syscalls only to holders of a capability.
func seccompProfile(sc *runtimeapi.LinuxContainerSecurityContext, privileged bool, caps []string, root string, load func(string) ([]byte, error)) (*specs.LinuxSeccomp, error) {
	if privileged {
		return nil, nil
	}
	if p := sc.GetSeccomp(); p != nil {
		const field = scField + "seccomp"
		switch p.GetProfileType() {
		case runtimeapi.SecurityProfile_Unconfined:
			return nil, nil
		case runtimeapi.SecurityProfile_RuntimeDefault:
			return defaultSeccomp(caps)
		case runtimeapi.SecurityProfile_Localhost:
			return localSeccomp(field+".localhost_ref", p.GetLocalhostRef(), caps, root, load)
		default:
			return nil, fieldErr(field+".profile_type", "unknown profile type %d", p.GetProfileType())
		}
	}
	const field = scField + "seccomp_profile_path"
	switch s := sc.GetSeccompProfilePath(); {
	case s == "" || s == profileUnconfined:
		return nil, nil
	case s == profileRuntimeDefault || s == profileDockerDefault:
		return defaultSeccomp(caps)
	case strings.HasPrefix(s, profileLocalhost):
		return localSeccomp(field, strings.TrimPrefix(s, profileLocalhost), caps, root, load)
	default:
		return nil, fieldErr(field, "%q is not runtime/default, docker/default, unconfined or localhost/<path>", s)
	}
}

// localSeccomp loads a profile from the node. A reference is an absolute
// path (the CRI requires one); a relative one is taken below root and may
// not climb out of it. The file may be in the OCI runtime-spec format or
// in Docker's (with archMap and conditional rules): Docker's parser reads
// both.
func localSeccomp(field, ref string, caps []string, root string, load func(string) ([]byte, error)) (*specs.LinuxSeccomp, error) {
	if ref == "" {
		return nil, fieldErr(field, "empty for a Localhost profile")
	}
	if strings.IndexByte(ref, 0) >= 0 {
		return nil, fieldErr(field, "contains a NUL byte")
	}
	p := path.Clean(ref)
	if !path.IsAbs(ref) {
		if root == "" {
			return nil, fieldErr(field, "%q is not an absolute path", ref)
		}
		if p == ".." || strings.HasPrefix(p, "../") {
			return nil, fieldErr(field, "%q leaves the seccomp profile directory", ref)
		}
		p = path.Join(root, p)
	}
	if load == nil {
		return nil, errors.New("no way to load seccomp profiles")
	}
	body, err := load(p)
	if err != nil {
		return nil, fieldErr(field, "loading seccomp profile %s: %v", p, err)
	}
	prof, err := mobyseccomp.LoadProfile(string(body), capsSpec(caps))
	if err != nil {
		return nil, fieldErr(field, "seccomp profile %s: %v", p, err)
	}
	return prof, nil
}

// capsSpec is the little of a spec the Docker profile parser looks at.
func capsSpec(caps []string) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
}

// The default profile is costly to build (hundreds of rules) and the same
// for every container with the same capabilities that it looks at, so it
// is built once per such set and copied out.
var defaultSeccompCache struct {
	once     sync.Once
	relevant map[string]bool // capabilities the profile's rules depend on
	mu       sync.Mutex
	byCaps   map[string]*specs.LinuxSeccomp
}

// defaultSeccomp returns Docker's (and containerd's) default profile for
// the native architecture only. The stock profile also lists the 32-bit
// x86 and x32 ABIs on amd64; libcontainer compiles the filter at every
// start and exec, and the extra ABIs more than double that (measured on
// the target machine: a start takes ~27 ms with the native-only filter,
// ~60 ms with all three). The cost of leaving them
// out: a 32-bit or x32 program in the container is killed by the filter's
// bad-architecture action on its first syscall.
func defaultSeccomp(caps []string) (*specs.LinuxSeccomp, error) {
	c := &defaultSeccompCache
	c.once.Do(func() {
		c.relevant = map[string]bool{}
		c.byCaps = map[string]*specs.LinuxSeccomp{}
		for _, s := range mobyseccomp.DefaultProfile().Syscalls {
			for _, f := range []*mobyseccomp.Filter{s.Includes, s.Excludes} {
				if f != nil {
					for _, cap := range f.Caps {
						c.relevant[cap] = true
					}
				}
			}
		}
	})
	var keyCaps []string
	for _, cap := range caps {
		if c.relevant[cap] {
			keyCaps = append(keyCaps, cap)
		}
	}
	slices.Sort(keyCaps)
	key := strings.Join(slices.Compact(keyCaps), ",")

	c.mu.Lock()
	defer c.mu.Unlock()
	prof, ok := c.byCaps[key]
	if !ok {
		var err error
		prof, err = mobyseccomp.GetDefaultProfile(capsSpec(keyCaps))
		if err != nil {
			return nil, err
		}
		if nativeSeccompArch != "" {
			prof.Architectures = []specs.Arch{nativeSeccompArch}
		}
		c.byCaps[key] = prof
	}
	return cloneSeccomp(prof), nil
}

// cloneSeccomp deep-copies a profile so that no caller can change the
// cached one.
func cloneSeccomp(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	out := *p
	out.Architectures = slices.Clone(p.Architectures)
	out.Flags = slices.Clone(p.Flags)
	if p.DefaultErrnoRet != nil {
		out.DefaultErrnoRet = ptr(*p.DefaultErrnoRet)
	}
	out.Syscalls = make([]specs.LinuxSyscall, len(p.Syscalls))
	for i, s := range p.Syscalls {
		s.Names = slices.Clone(s.Names)
		s.Args = slices.Clone(s.Args)
		if s.ErrnoRet != nil {
			s.ErrnoRet = ptr(*s.ErrnoRet)
		}
		out.Syscalls[i] = s
	}
	return &out
}
