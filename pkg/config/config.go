// Package config holds berthd's configuration: one struct whose defaults and
// comments are the single source for the default TOML file.
package config

import (
	"path/filepath"
	"time"
)

// Config is the whole of berthd's configuration. The `comment` tags are
// printed by `berthd config`, so the struct documents itself.
type Config struct {
	Root            string   `toml:"root" comment:"Persistent data: images, the state store. Flag --root overrides it."`
	StateDir        string   `toml:"state_dir" comment:"Runtime state that does not survive a reboot. Flag --state-dir overrides it."`
	Socket          string   `toml:"socket" comment:"The CRI gRPC unix socket (mode 0660, owner root). Flag --socket overrides it."`
	LogLevel        string   `toml:"log_level" comment:"One of trace, debug, info, warn, error. Reloaded on SIGHUP."`
	LogFormat       string   `toml:"log_format" comment:"text or json."`
	ShutdownTimeout Duration `toml:"shutdown_timeout" comment:"How long SIGTERM waits for RPCs in flight before closing them."`
	CgroupDriver    string   `toml:"cgroup_driver" comment:"cgroupfs or systemd; reported to kubelet through RuntimeConfig."`

	Runtime RuntimeConfig `toml:"runtime" comment:"Pods and containers."`
	Image   ImageConfig   `toml:"image" comment:"Image pulls and storage."`
	Network NetworkConfig `toml:"network" comment:"Pod networking through CNI."`

	Stream  StreamConfig  `toml:"stream" comment:"The streaming server for Exec, Attach and PortForward (the URLs those RPCs return)."`
	Metrics MetricsConfig `toml:"metrics" comment:"Prometheus metrics over HTTP."`

	// Registries maps a registry host (as in image names: docker.io,
	// registry.example:5000) to how it is reached. Reloaded on SIGHUP.
	Registries map[string]Registry `toml:"registries" comment:"Per-registry settings, keyed by the registry host of image names. Reloaded on SIGHUP.\nExample:\n  [registries.\"docker.io\"]\n  mirrors = [\"http://127.0.0.1:5000\"]\n  endpoint = \"http://127.0.0.1:5000\"\n  [registries.\"registry.example:5000\"]\n  insecure = true"`
}

// RuntimeConfig configures pods, containers and their monitors.
type RuntimeConfig struct {
	ShimPath        string `toml:"shim_path" comment:"The per-pod monitor binary; empty means berth-shim beside berthd."`
	RuntimePath     string `toml:"runtime_path" comment:"The OCI runtime binary of the built-in runtime handler (libcontainer), which each pod's monitor runs for every change to a container; empty means berth-runtime beside berthd."`
	PIDHolderPath   string `toml:"pidns_holder_path" comment:"The process that holds the PID namespace of a pod whose containers share one; empty means berth-pidns-holder beside berthd."`
	DaemonCgroup    string `toml:"daemon_cgroup" comment:"Absolute cgroup berthd moves itself into at start, unless systemd started it (it then stays in its unit); empty leaves it where it was started."`
	ShimGOMAXPROCS  int    `toml:"shim_gomaxprocs" comment:"Go runtime threads running at once in each pod's monitor; one suffices for a process that mostly waits, and saves memory per pod."`
	ShimCgroup      string `toml:"shim_cgroup" comment:"Absolute cgroup under which each pod's monitor gets its own cgroup, apart from berthd so that stopping berthd stops no container."`
	PodCgroup       string `toml:"pod_cgroup" comment:"Absolute cgroup for pods whose request names no cgroup_parent (kubelet always names one)."`
	LogMaxLineSize  int    `toml:"log_max_line_size" comment:"Container log lines longer than this many bytes are split into partial lines."`
	ExecOutputLimit int    `toml:"exec_output_limit" comment:"ExecSync keeps at most this many bytes of each of stdout and stderr; the response says what was cut."`
	ShmSize         int64  `toml:"shm_size" comment:"Size in bytes of each pod's /dev/shm."`

	// Handlers are the runtime handlers (Kubernetes RuntimeClass) besides
	// the built-in one, by name.
	Handlers map[string]RuntimeHandler `toml:"handlers" comment:"Runtime handlers (a RuntimeClass's handler) besides the built-in one (\"\" and \"berth\": berth-runtime, on libcontainer), keyed by name.\nEach names an OCI runtime binary with runc's command line (runc, crun) that the monitor of a pod asking for it drives for all of the pod's containers.\nExample:\n  [runtime.handlers.runc]\n  path = \"/usr/sbin/runc\"\n  [runtime.handlers.crun]\n  path = \"/usr/bin/crun\"\n  root = \"/run/berth/crun\""`
}

// RuntimeHandler is an external OCI runtime binary.
type RuntimeHandler struct {
	Path string `toml:"path" comment:"Absolute path of the runtime binary; it must exist and be executable when berthd starts."`
	Root string `toml:"root,omitempty" comment:"The runtime's state directory (its --root); empty means a directory inside each pod's monitor directory."`
}

// ImageConfig configures the image service.
type ImageConfig struct {
	MaxConcurrentDownloads int      `toml:"max_concurrent_downloads" comment:"Layers downloaded at once per pull."`
	PullProgressTimeout    Duration `toml:"pull_progress_timeout" comment:"A pull that receives no bytes for this long fails."`
	AuthFile               string   `toml:"auth_file" comment:"Node-wide registry credentials in Docker config.json format; a missing file means none. Reloaded on SIGHUP."`
	ImportDir              string   `toml:"import_dir" comment:"Image archives (OCI layout tar or docker save tar) put here are imported at start and when they appear. A relative path is under root; empty disables it."`
}

// NetworkConfig configures CNI.
type NetworkConfig struct {
	ConfDir    string   `toml:"conf_dir" comment:"Where CNI network configs are read from; the first in lexical order is used."`
	PluginDirs []string `toml:"plugin_dirs" comment:"Where CNI plugin binaries are looked up, in order."`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	Address string `toml:"address" comment:"host:port where /metrics is served over plain HTTP, such as \"127.0.0.1:9090\"; empty disables it (nothing listens)."`
}

// StreamConfig configures the streaming server.
type StreamConfig struct {
	Address string `toml:"address" comment:"host:port the streaming server listens on, plain HTTP without authentication: keep it on a loopback address. Port 0 picks a free port at start."`
}

// Registry says how one registry is reached.
type Registry struct {
	Mirrors  []string `toml:"mirrors,omitempty" comment:"URLs tried in order before the registry itself."`
	Endpoint string   `toml:"endpoint,omitempty" comment:"Where the registry itself is reached; no other address is contacted for it."`
	Insecure bool     `toml:"insecure,omitempty" comment:"Allow plain HTTP and unverified TLS."`
}

// Default returns the configuration berthd runs with when no file is given.
func Default() Config {
	return Config{
		Root:            "/var/lib/berth",
		StateDir:        "/run/berth",
		Socket:          "/run/berth/berth.sock",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: Duration(10 * time.Second),
		CgroupDriver:    "cgroupfs",
		Runtime: RuntimeConfig{
			DaemonCgroup:    "/berth/daemon",
			ShimGOMAXPROCS:  1,
			ShimCgroup:      "/berth/shims",
			PodCgroup:       "/berth/pods",
			LogMaxLineSize:  16 * 1024,
			ExecOutputLimit: 16 << 20,
			ShmSize:         64 << 20,
			Handlers:        map[string]RuntimeHandler{},
		},
		Image: ImageConfig{
			MaxConcurrentDownloads: 4,
			PullProgressTimeout:    Duration(time.Minute),
			AuthFile:               "/etc/berth/auth.json",
			ImportDir:              "import",
		},
		Network: NetworkConfig{
			ConfDir:    "/etc/cni/net.d",
			PluginDirs: []string{"/usr/lib/cni", "/opt/cni/bin"},
		},
		Stream:     StreamConfig{Address: "127.0.0.1:0"},
		Registries: map[string]Registry{},
	}
}

// ImportPath returns the import directory, resolved against Root.
func (c *Config) ImportPath() string {
	if c.Image.ImportDir == "" || filepath.IsAbs(c.Image.ImportDir) {
		return c.Image.ImportDir
	}
	return filepath.Join(c.Root, c.Image.ImportDir)
}
