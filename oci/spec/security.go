package spec

import (
	"path"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultMaskedPaths and defaultReadonlyPaths are containerd's defaults,
// used when the request lists none.
var (
	defaultMaskedPaths = []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
		"/proc/scsi",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// protectedPaths returns the masked and read-only paths. kubelet sends its
// defaults for a normal /proc and empty lists for an Unmasked one; the
// wire cannot tell an empty list from none, so an empty list means the
// runtime's defaults, as in containerd. A privileged container gets
// neither.
func protectedPaths(sc *runtimeapi.LinuxContainerSecurityContext, privileged bool) (masked, readonly []string, err error) {
	if privileged {
		return nil, nil, nil
	}
	if masked, err = cleanPaths(scField+"masked_paths", sc.GetMaskedPaths(), defaultMaskedPaths); err != nil {
		return nil, nil, err
	}
	if readonly, err = cleanPaths(scField+"readonly_paths", sc.GetReadonlyPaths(), defaultReadonlyPaths); err != nil {
		return nil, nil, err
	}
	return masked, readonly, nil
}

func cleanPaths(field string, paths, defaults []string) ([]string, error) {
	if len(paths) == 0 {
		return append([]string(nil), defaults...), nil
	}
	out := make([]string, 0, len(paths))
	for i, p := range paths {
		if !path.IsAbs(p) || strings.IndexByte(p, 0) >= 0 {
			return nil, fieldErr(indexed(field, i), "%q is not an absolute path", p)
		}
		out = append(out, path.Clean(p))
	}
	return out, nil
}

// AppArmor profile names in the deprecated string form.
const (
	profileRuntimeDefault = "runtime/default"
	profileDockerDefault  = "docker/default"
	profileUnconfined     = "unconfined"
	profileLocalhost      = "localhost/"
)

// apparmorProfile returns the requested profile (for the status) and the
// one to set in the spec. With AppArmor disabled nothing is set, and a
// Localhost profile is refused: the workload asked for a particular
// confinement and must not run silently without it.
func apparmorProfile(sc *runtimeapi.LinuxContainerSecurityContext, privileged, enabled bool, defaultProfile string) (requested, applied string, err error) {
	const field = scField + "apparmor"
	var local string
	if p := sc.GetApparmor(); p != nil {
		switch p.GetProfileType() {
		case runtimeapi.SecurityProfile_RuntimeDefault:
			requested = profileRuntimeDefault
		case runtimeapi.SecurityProfile_Unconfined:
			requested = profileUnconfined
		case runtimeapi.SecurityProfile_Localhost:
			local = p.GetLocalhostRef()
			if local == "" {
				return "", "", fieldErr(field+".localhost_ref", "empty for a Localhost profile")
			}
			requested = profileLocalhost + local
		default:
			return "", "", fieldErr(field+".profile_type", "unknown profile type %d", p.GetProfileType())
		}
	} else if s := sc.GetApparmorProfile(); s != "" {
		const sfield = scField + "apparmor_profile"
		switch {
		case s == profileRuntimeDefault, s == profileUnconfined:
			requested = s
		case strings.HasPrefix(s, profileLocalhost):
			local = strings.TrimPrefix(s, profileLocalhost)
			if local == "" {
				return "", "", fieldErr(sfield, "no profile name after %q", profileLocalhost)
			}
			requested = s
		default:
			return "", "", fieldErr(sfield, "%q is not runtime/default, unconfined or localhost/<name>", s)
		}
	}
	if local != "" && !enabled {
		return "", "", fieldErr(field, "profile %q requested but AppArmor is not enabled on this node", local)
	}
	if privileged || !enabled {
		return requested, "", nil
	}
	switch {
	case local != "":
		applied = local
	case requested == profileUnconfined:
		applied = ""
	default:
		applied = defaultProfile
	}
	return requested, applied, nil
}
