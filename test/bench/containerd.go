package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// startContainerd starts containerd with root, state, sockets and temp
// mounts under dir, so that it shares nothing with a containerd the
// machine may run (/run/containerd, /var/lib/containerd stay untouched).
func startContainerd(ctx context.Context, bin, dir string, set containerdSettings) (*runtimeUnderTest, error) {
	version, err := commandOutput(bin, "--version")
	if err != nil {
		return nil, fmt.Errorf("containerd --version: %w", err)
	}
	root := filepath.Join(dir, "root")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{dir, tmp, filepath.Join(dir, "cni", "net.d"), filepath.Join(dir, "cni", "bin")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	socket := filepath.Join(dir, "state", "containerd.sock")
	cfg := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(cfg, []byte(containerdConfig(dir, socket, set)), 0o644); err != nil {
		return nil, err
	}
	settings := "containerd: CRI plugin defaults (`max_concurrent_downloads = 3`, overlayfs snapshotter, " +
		"compressed layers kept in the content store next to the unpacked snapshots), " +
		gzipNote(envPath) + ", log level debug."
	r := &runtimeUnderTest{
		name:     "containerd",
		version:  version,
		settings: settings,
		dir:      dir,
		stateDir: filepath.Join(dir, "state"),
		socket:   socket,
		logPath:  filepath.Join(dir, "containerd.log"),
		leftovers: func() ([]string, error) {
			return nonEmpty(
				filepath.Join(root, "io.containerd.content.v1.content", "blobs", "sha256"),
				filepath.Join(root, "io.containerd.content.v1.content", "ingest"),
				filepath.Join(root, "io.containerd.snapshotter.v1.overlayfs", "snapshots"),
			)
		},
		storeDirs: []string{
			filepath.Join(root, "io.containerd.content.v1.content"),
			filepath.Join(root, "io.containerd.snapshotter.v1.overlayfs"),
		},
	}
	return r, r.start(ctx, bin, []string{"--config", cfg}, cleanEnv(tmp), socket)
}

// containerdSettings are what the sections set in containerd's config;
// zero values are the pull section's: no pods ever run.
type containerdSettings struct {
	registryURL string
	// sandboxImage is the pause image; empty names one that does not exist
	// (it is pulled only when a pod runs).
	sandboxImage string
	// cniBinDir and cniConfDir; empty: directories of its own under dir.
	cniBinDir, cniConfDir string
	// cgroups lets the CRI plugin put containers in cgroups
	// (disable_cgroup = false).
	cgroups bool
}

// containerdConfig is a version 2 (containerd 1.6) config. Plugins that
// would touch paths outside dir or probe the host (aufs loads a kernel
// module, opt writes /opt/containerd) are disabled; the CRI plugin gets
// the mirror, a sandbox image that only the test registry serves, and CNI
// dirs. runc's state (Root), network namespaces and everything else of
// the runtime lives under dir; only the shims' sockets go to
// /run/containerd/s, which containerd 1.6 does not let one move. No debug,
// metrics or TCP listener is opened.
func containerdConfig(dir, socket string, set containerdSettings) string {
	cni := filepath.Join(dir, "cni")
	sandbox := set.sandboxImage
	if sandbox == "" {
		sandbox = "docker.io/berth/pause:none"
	}
	binDir, confDir := set.cniBinDir, set.cniConfDir
	if binDir == "" {
		binDir = filepath.Join(cni, "bin")
	}
	if confDir == "" {
		confDir = filepath.Join(cni, "net.d")
	}
	return fmt.Sprintf(`version = 2
root = %q
state = %q
temp = %q
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
  level = "debug"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  disable_cgroup = %t
  systemd_cgroup = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  disable_tcp_service = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.%q]
    endpoint = [%q]
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "tmp"),
		socket, socket+".ttrpc",
		sandbox, !set.cgroups,
		filepath.Join(dir, "runc"),
		binDir, confDir,
		benchRepoHost, set.registryURL)
}

// hostFields matches the host= and url= fields of containerd's debug log
// lines about resolving and fetching.
var hostFields = regexp.MustCompile(`\b(host|url)="?([^"\s]+)"?`)

// contactedHosts lists the registry hosts containerd's debug log names,
// which is every host it resolved or fetched from.
func contactedHosts(log io.Reader) ([]string, error) {
	seen := map[string]bool{}
	sc := bufio.NewScanner(log)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, m := range hostFields.FindAllStringSubmatch(sc.Text(), -1) {
			h := m[2]
			if m[1] == "url" {
				u, err := url.Parse(h)
				if err != nil || u.Host == "" {
					continue
				}
				h = u.Host
			}
			seen[h] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	sort.Strings(out)
	return out, nil
}

// checkContactedOnly fails unless the daemon's log shows that it fetched
// from registry and from no other host.
func (r *runtimeUnderTest) checkContactedOnly(registry string) error {
	f, err := os.Open(r.logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	hosts, err := contactedHosts(f)
	if err != nil {
		return fmt.Errorf("reading %s log: %w", r.name, err)
	}
	return onlyHost(hosts, registry)
}

func onlyHost(hosts []string, registry string) error {
	var other []string
	found := false
	for _, h := range hosts {
		if h == registry {
			found = true
		} else {
			other = append(other, h)
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("contacted hosts other than the test registry %s: %s", registry, strings.Join(other, ", "))
	}
	if !found {
		return fmt.Errorf("log names no request to the test registry %s; cannot tell which hosts were contacted", registry)
	}
	return nil
}

// gzipNote says how containerd decompresses layers here: it runs unpigz
// when it finds it on PATH and uses Go's compress/gzip otherwise.
func gzipNote(path string) string {
	for _, dir := range filepath.SplitList(path) {
		if st, err := os.Stat(filepath.Join(dir, "unpigz")); err == nil && !st.IsDir() {
			return "layers decompressed by unpigz (" + filepath.Join(dir, "unpigz") + ")"
		}
	}
	return "layers decompressed by Go's compress/gzip (unpigz, from the pigz package, is not installed)"
}
