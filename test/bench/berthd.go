package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// startBerthd starts berthd with its own root, state dir, socket and
// config under dir. The returned runtime is non-nil once a process may
// exist, so that the caller can stop it even when start fails.
func startBerthd(ctx context.Context, bin, dir string, set berthdSettings) (*runtimeUnderTest, error) {
	version, err := commandOutput(bin, "--version")
	if err != nil {
		return nil, fmt.Errorf("berthd --version: %w", err)
	}
	state := set.stateDir
	if state == "" {
		state = filepath.Join(dir, "state")
	}
	paths := struct{ root, state, socket, config, tmp string }{
		root:   filepath.Join(dir, "root"),
		state:  state,
		socket: filepath.Join(state, "berth.sock"),
		config: filepath.Join(dir, "berth.toml"),
		tmp:    filepath.Join(dir, "tmp"),
	}
	for _, d := range []string{dir, paths.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(paths.config, []byte(berthdConfig(dir, set)), 0o644); err != nil {
		return nil, err
	}
	r := &runtimeUnderTest{
		name:     "berthd",
		version:  version,
		settings: "berthd: default settings (`image.max_concurrent_downloads = 4`), log level debug.",
		dir:      dir,
		stateDir: paths.state,
		socket:   paths.socket,
		logPath:  filepath.Join(dir, "berthd.log"),
		leftovers: func() ([]string, error) {
			img := filepath.Join(paths.root, "images")
			return nonEmpty(filepath.Join(img, "blobs", "sha256"), filepath.Join(img, "layers"))
		},
		storeDirs: []string{filepath.Join(paths.root, "images")},
	}
	args := []string{"--config", paths.config, "--root", paths.root, "--state-dir", paths.state, "--socket", paths.socket}
	return r, r.start(ctx, bin, args, cleanEnv(paths.tmp), paths.socket)
}

// berthdSettings are what the sections set in berthd's config; zero
// values keep every path inside the daemon's directory.
type berthdSettings struct {
	registryURL string
	confDir     string   // network.conf_dir; empty: <dir>/cni/net.d
	pluginDirs  []string // network.plugin_dirs; empty: <dir>/cni/bin
	podCgroup   string   // runtime.pod_cgroup; empty: berthd's default
	// stateDir is --state-dir; empty: <dir>/state. berthd puts each pod
	// monitor's socket at <state>/shims/<64-hex pod id>/shim.sock, which
	// must fit a unix socket address (107 bytes): a state dir of more than
	// 25 bytes makes every RunPodSandbox fail.
	stateDir string
}

// berthdConfig sends docker.io to the test registry and keeps every other
// path berthd would touch (auth file, CNI configs) inside dir. berthd stays
// in the cgroups it is started in (daemon_cgroup = ""), as containerd does,
// so that the benchmark leaves no daemon cgroup behind.
func berthdConfig(dir string, set berthdSettings) string {
	confDir := set.confDir
	if confDir == "" {
		confDir = filepath.Join(dir, "cni", "net.d")
	}
	plugins := set.pluginDirs
	if len(plugins) == 0 {
		plugins = []string{filepath.Join(dir, "cni", "bin")}
	}
	quoted := make([]string, len(plugins))
	for i, p := range plugins {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	podCgroup := ""
	if set.podCgroup != "" {
		podCgroup = fmt.Sprintf("pod_cgroup = %q\n", set.podCgroup)
	}
	return fmt.Sprintf(`log_level = "debug"

[runtime]
daemon_cgroup = ""
%s
[image]
auth_file = %q

[network]
conf_dir = %q
plugin_dirs = [%s]

[registries.%q]
endpoint = %q
mirrors = [%q]
`, podCgroup, filepath.Join(dir, "auth.json"), confDir, strings.Join(quoted, ", "),
		benchRepoHost, set.registryURL, set.registryURL)
}

func commandOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// storedBytes sums the sizes of the regular files below dirs.
func storedBytes(dirs ...string) (int64, error) {
	var n int64
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(_ string, e os.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if e.Type().IsRegular() {
				info, err := e.Info()
				if err != nil {
					return err
				}
				n += info.Size()
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// nonEmpty returns the entries of the given directories; a directory that
// does not exist counts as empty.
func nonEmpty(dirs ...string) ([]string, error) {
	var left []string
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			left = append(left, filepath.Join(d, e.Name()))
		}
	}
	return left, nil
}
