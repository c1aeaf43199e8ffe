package spec

import (
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultPath is $PATH when neither the image nor the request sets one,
// the same as Docker's and containerd's.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxNoFile caps RLIMIT_NOFILE: higher limits make programs that loop over
// every descriptor (closing them before exec) crawl.
const maxNoFile = 1 << 20

// processArgs follows kubelet's (and Docker's) rules: a command replaces the
// image's Entrypoint and drops its Cmd; args alone replace only the Cmd.
func processArgs(command, args []string, img ocispec.ImageConfig) ([]string, error) {
	var out []string
	switch {
	case len(command) > 0:
		out = append(append(out, command...), args...)
	case len(args) > 0:
		out = append(append(out, img.Entrypoint...), args...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	if len(out) == 0 {
		return nil, fieldErr("command", "no command to run: the request has no command or args and the image has no Entrypoint or Cmd")
	}
	if out[0] == "" {
		return nil, fieldErr("command", "the program to run is an empty string")
	}
	for i, a := range command {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fieldErr(indexed("command", i), "contains a NUL byte")
		}
	}
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fieldErr(indexed("args", i), "contains a NUL byte")
		}
	}
	return out, nil
}

// envList keeps KEY=value entries in first-set order, a later set of the
// same key replacing the value in place.
type envList struct {
	entries []string
	index   map[string]int
}

func (l *envList) set(entry string) {
	key, _, _ := strings.Cut(entry, "=")
	if i, ok := l.index[key]; ok {
		l.entries[i] = entry
		return
	}
	if l.index == nil {
		l.index = map[string]int{}
	}
	l.index[key] = len(l.entries)
	l.entries = append(l.entries, entry)
}

// processEnv layers $HOSTNAME, the image's Env and the request's envs, a
// later layer winning for the same key, and adds a default $PATH.
func processEnv(hostname string, imageEnv []string, envs []*runtimeapi.KeyValue) ([]string, error) {
	var l envList
	if hostname != "" {
		l.set("HOSTNAME=" + hostname)
	}
	for i, e := range imageEnv {
		if strings.IndexByte(e, 0) >= 0 {
			return nil, fieldErr(indexed("image_config.Env", i), "contains a NUL byte")
		}
		if e == "" || strings.HasPrefix(e, "=") {
			continue
		}
		l.set(e)
	}
	for i, kv := range envs {
		k, v := kv.GetKey(), string(kv.GetValue())
		switch {
		case k == "":
			return nil, fieldErr(indexed("envs", i)+".key", "empty name")
		case strings.ContainsAny(k, "=\x00"):
			return nil, fieldErr(indexed("envs", i)+".key", "%q contains '=' or a NUL byte", k)
		case strings.IndexByte(v, 0) >= 0:
			return nil, fieldErr(indexed("envs", i)+".value", "contains a NUL byte")
		}
		l.set(k + "=" + v)
	}
	if _, ok := l.index["PATH"]; !ok {
		l.set(defaultPath)
	}
	return l.entries, nil
}

// workingDir prefers the request's directory, then the image's, then "/".
func workingDir(request, image string) (string, error) {
	if request != "" {
		if !path.IsAbs(request) {
			return "", fieldErr("working_dir", "%q is not an absolute path", request)
		}
		if strings.IndexByte(request, 0) >= 0 {
			return "", fieldErr("working_dir", "contains a NUL byte")
		}
		return path.Clean(request), nil
	}
	if image != "" && strings.IndexByte(image, 0) < 0 {
		// A relative WORKDIR in an image config is relative to the root.
		return path.Clean("/" + image), nil
	}
	return "/", nil
}

// rlimits sets RLIMIT_NOFILE to the daemon's hard limit, capped at
// maxNoFile. Asking for more than the daemon's hard limit would need
// CAP_SYS_RESOURCE and fail the start.
func rlimits(daemonHard uint64) []specs.POSIXRlimit {
	if daemonHard == 0 {
		return nil
	}
	n := min(daemonHard, maxNoFile)
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}}
}
