package spec

import (
	"errors"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func hasSyscall(p *specs.LinuxSeccomp, name string, action specs.LinuxSeccompAction) bool {
	for _, s := range p.Syscalls {
		if s.Action == action && slices.Contains(s.Names, name) {
			return true
		}
	}
	return false
}

func TestDefaultSeccompNativeOnly(t *testing.T) {
	p, err := defaultSeccomp(defaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno || len(p.Syscalls) < 10 {
		t.Fatalf("not the default profile: %s, %d rules", p.DefaultAction, len(p.Syscalls))
	}
	if runtime.GOARCH == "amd64" && !slices.Equal(p.Architectures, []specs.Arch{specs.ArchX86_64}) {
		t.Fatalf("architectures %v, want only x86_64", p.Architectures)
	}
	if !hasSyscall(p, "read", specs.ActAllow) {
		t.Error("read not allowed")
	}
	if hasSyscall(p, "mount", specs.ActAllow) {
		t.Error("mount allowed without CAP_SYS_ADMIN")
	}
}

func TestDefaultSeccompDependsOnCapabilities(t *testing.T) {
	p, err := defaultSeccomp(append(slices.Clone(defaultCapabilities), "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	if !hasSyscall(p, "mount", specs.ActAllow) {
		t.Error("mount not allowed with CAP_SYS_ADMIN")
	}
}

func TestDefaultSeccompCached(t *testing.T) {
	c := &defaultSeccompCache
	keys := func() []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Sorted(maps.Keys(c.byCaps))
	}
	a, _ := defaultSeccomp(defaultCapabilities)
	// CAP_NET_ADMIN is not one the profile looks at: same entry.
	b, _ := defaultSeccomp(append(slices.Clone(defaultCapabilities), "CAP_NET_ADMIN"))
	if _, err := defaultSeccomp([]string{"CAP_SYSLOG", "CAP_KILL"}); err != nil {
		t.Fatal(err)
	}
	got := keys()
	if !slices.Contains(got, "CAP_SYS_CHROOT") || !slices.Contains(got, "CAP_SYSLOG") || slices.ContainsFunc(got, func(k string) bool {
		return strings.Contains(k, "NET_ADMIN") || strings.Contains(k, "KILL")
	}) {
		t.Fatalf("cache keys %q", got)
	}
	if len(a.Syscalls) != len(b.Syscalls) {
		t.Fatal("same relevant capabilities, different profiles")
	}
	// A caller changing its copy must not change the next one.
	a.Syscalls[0].Names[0] = "changed"
	a.Architectures[0] = "changed"
	d, _ := defaultSeccomp(defaultCapabilities)
	if d.Syscalls[0].Names[0] == "changed" || d.Architectures[0] == "changed" {
		t.Fatal("cached profile shared with a caller")
	}
}

func TestDefaultSeccompConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := defaultSeccomp(defaultCapabilities); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkDefaultSeccomp shows what the cache saves: the cached path only
// copies the profile.
func BenchmarkDefaultSeccomp(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := defaultSeccomp(defaultCapabilities); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultSeccompUncached is the work the cache avoids.
func BenchmarkDefaultSeccompUncached(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := mobyseccomp.GetDefaultProfile(capsSpec(defaultCapabilities)); err != nil {
			b.Fatal(err)
		}
	}
}

const ociProfile = `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "architectures": ["SCMP_ARCH_X86_64"],
  "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
}`

const dockerProfile = `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
              {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
  "syscalls": [
    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
    {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
  ]
}`

func TestSeccompProfile(t *testing.T) {
	files := map[string]string{
		"/var/lib/kubelet/seccomp/oci.json":    ociProfile,
		"/var/lib/kubelet/seccomp/docker.json": dockerProfile,
		"/var/lib/kubelet/seccomp/bad.json":    "{not json",
	}
	var loaded []string
	load := func(p string) ([]byte, error) {
		loaded = append(loaded, p)
		s, ok := files[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return []byte(s), nil
	}
	type sc = runtimeapi.LinuxContainerSecurityContext
	prof := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *sc {
		return &sc{Seccomp: &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}}
	}
	const isDefault, isNone, isOCI, isDocker = "default", "none", "oci", "docker"
	for _, tc := range []struct {
		name       string
		sc         *sc
		privileged bool
		want       string
		wantLoad   string
		err        string
	}{
		{name: "nothing is unconfined", want: isNone},
		{name: "runtime default", sc: prof(runtimeapi.SecurityProfile_RuntimeDefault, ""), want: isDefault},
		{name: "unconfined", sc: prof(runtimeapi.SecurityProfile_Unconfined, ""), want: isNone},
		{name: "privileged ignores profile", sc: prof(runtimeapi.SecurityProfile_RuntimeDefault, ""), privileged: true, want: isNone},
		{name: "localhost OCI format", sc: prof(runtimeapi.SecurityProfile_Localhost, "/var/lib/kubelet/seccomp/oci.json"), want: isOCI, wantLoad: "/var/lib/kubelet/seccomp/oci.json"},
		{name: "localhost Docker format", sc: prof(runtimeapi.SecurityProfile_Localhost, "/var/lib/kubelet/seccomp/docker.json"), want: isDocker},
		{name: "localhost relative to root", sc: prof(runtimeapi.SecurityProfile_Localhost, "oci.json"), want: isOCI, wantLoad: "/var/lib/kubelet/seccomp/oci.json"},
		{name: "localhost climbing out", sc: prof(runtimeapi.SecurityProfile_Localhost, "../../../etc/shadow"), err: `linux.security_context.seccomp.localhost_ref: "../../../etc/shadow" leaves the seccomp profile directory`},
		{name: "localhost empty", sc: prof(runtimeapi.SecurityProfile_Localhost, ""), err: "linux.security_context.seccomp.localhost_ref: empty for a Localhost profile"},
		{name: "localhost missing", sc: prof(runtimeapi.SecurityProfile_Localhost, "/nope.json"), err: "linux.security_context.seccomp.localhost_ref: loading seccomp profile /nope.json: file does not exist"},
		{name: "localhost bad json", sc: prof(runtimeapi.SecurityProfile_Localhost, "/var/lib/kubelet/seccomp/bad.json"), err: "linux.security_context.seccomp.localhost_ref: seccomp profile /var/lib/kubelet/seccomp/bad.json:"},
		{name: "unknown type", sc: prof(9, ""), err: "linux.security_context.seccomp.profile_type: unknown profile type 9"},
		{name: "deprecated runtime/default", sc: &sc{SeccompProfilePath: "runtime/default"}, want: isDefault},
		{name: "deprecated docker/default", sc: &sc{SeccompProfilePath: "docker/default"}, want: isDefault},
		{name: "deprecated unconfined", sc: &sc{SeccompProfilePath: "unconfined"}, want: isNone},
		{name: "deprecated localhost", sc: &sc{SeccompProfilePath: "localhost//var/lib/kubelet/seccomp/oci.json"}, want: isOCI},
		{name: "deprecated garbage", sc: &sc{SeccompProfilePath: "strict"}, err: `linux.security_context.seccomp_profile_path: "strict" is not`},
		{
			name: "struct wins over path",
			sc:   &sc{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, SeccompProfilePath: "runtime/default"},
			want: isNone,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loaded = nil
			got, err := seccompProfile(tc.sc, tc.privileged, defaultCapabilities, "/var/lib/kubelet/seccomp", load)
			if wantInvalid(t, err, tc.err) {
				return
			}
			switch tc.want {
			case isNone:
				if got != nil {
					t.Fatalf("got a profile with %d rules, want none", len(got.Syscalls))
				}
			case isDefault:
				if got == nil || !hasSyscall(got, "read", specs.ActAllow) || len(got.Syscalls) < 10 {
					t.Fatalf("not the default profile: %+v", got)
				}
			case isOCI:
				if got == nil || len(got.Syscalls) != 1 || !slices.Equal(got.Syscalls[0].Names, []string{"read", "write", "exit_group"}) {
					t.Fatalf("not the OCI profile: %+v", got)
				}
			case isDocker:
				// mount is for CAP_SYS_ADMIN holders only, which the
				// default set is not.
				if got == nil || len(got.Syscalls) != 1 || got.Syscalls[0].Names[0] != "read" {
					t.Fatalf("not the Docker profile: %+v", got)
				}
				if runtime.GOARCH == "amd64" && !slices.Equal(got.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86}) {
					t.Fatalf("architectures %v", got.Architectures)
				}
			}
			if tc.wantLoad != "" && !slices.Equal(loaded, []string{tc.wantLoad}) {
				t.Fatalf("loaded %v, want %s", loaded, tc.wantLoad)
			}
		})
	}
}

func TestSeccompNoLoader(t *testing.T) {
	sc := &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/p.json"}}
	_, err := seccompProfile(sc, false, nil, "", nil)
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want a caller error", err)
	}
}
