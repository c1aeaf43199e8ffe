package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Validate checks every value and names the key of the first bad one.
func (c *Config) Validate() error {
	for key, p := range map[string]string{"root": c.Root, "state_dir": c.StateDir, "socket": c.Socket, "network.conf_dir": c.Network.ConfDir} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("config: %s: %q must be an absolute path", key, p)
		}
	}
	if p := c.Image.AuthFile; p != "" && !filepath.IsAbs(p) {
		return fmt.Errorf("config: image.auth_file: %q must be an absolute path or empty", p)
	}
	if p := c.Image.ImportDir; !filepath.IsAbs(p) && (p == ".." || strings.HasPrefix(p, "../")) {
		return fmt.Errorf("config: image.import_dir: %q must be absolute or inside root", p)
	}
	for i, p := range c.Network.PluginDirs {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("config: network.plugin_dirs[%d]: %q must be an absolute path", i, p)
		}
	}
	if !oneOf(c.LogLevel, "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic") {
		return fmt.Errorf("config: log_level: %q is not one of trace, debug, info, warn, error", c.LogLevel)
	}
	if !oneOf(c.LogFormat, "text", "json") {
		return fmt.Errorf("config: log_format: %q is not text or json", c.LogFormat)
	}
	if !oneOf(c.CgroupDriver, "cgroupfs", "systemd") {
		return fmt.Errorf("config: cgroup_driver: %q is not cgroupfs or systemd", c.CgroupDriver)
	}
	for key, p := range map[string]string{"runtime.daemon_cgroup": c.Runtime.DaemonCgroup, "runtime.shim_cgroup": c.Runtime.ShimCgroup, "runtime.pod_cgroup": c.Runtime.PodCgroup} {
		if p == "" && key == "runtime.daemon_cgroup" {
			continue
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			return fmt.Errorf("config: %s: %q must be a clean absolute cgroup path other than /", key, p)
		}
	}
	// Binaries berthd runs; empty means the one beside berthd.
	for _, b := range []struct{ key, path string }{
		{"runtime.shim_path", c.Runtime.ShimPath},
		{"runtime.runtime_path", c.Runtime.RuntimePath},
		{"runtime.pidns_holder_path", c.Runtime.PIDHolderPath},
	} {
		if b.path != "" && !filepath.IsAbs(b.path) {
			return fmt.Errorf("config: %s: %q must be an absolute path or empty", b.key, b.path)
		}
	}
	if err := checkHandlers(c.Runtime.Handlers); err != nil {
		return err
	}
	if c.Runtime.ShimGOMAXPROCS < 1 || c.Runtime.ShimGOMAXPROCS > 256 {
		return fmt.Errorf("config: runtime.shim_gomaxprocs: %d is not between 1 and 256", c.Runtime.ShimGOMAXPROCS)
	}
	if c.Runtime.LogMaxLineSize < 256 {
		return fmt.Errorf("config: runtime.log_max_line_size: %d is below 256", c.Runtime.LogMaxLineSize)
	}
	if c.Runtime.ExecOutputLimit < 1024 {
		return fmt.Errorf("config: runtime.exec_output_limit: %d is below 1024", c.Runtime.ExecOutputLimit)
	}
	if c.Runtime.ShmSize < 1<<20 {
		return fmt.Errorf("config: runtime.shm_size: %d is below 1 MiB", c.Runtime.ShmSize)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("config: shutdown_timeout: must be greater than zero")
	}
	if err := checkStreamAddress(c.Stream.Address); err != nil {
		return fmt.Errorf("config: stream.address: %v", err)
	}
	if c.Image.MaxConcurrentDownloads < 1 || c.Image.MaxConcurrentDownloads > 64 {
		return fmt.Errorf("config: image.max_concurrent_downloads: %d is not between 1 and 64", c.Image.MaxConcurrentDownloads)
	}
	if c.Image.PullProgressTimeout <= 0 {
		return fmt.Errorf("config: image.pull_progress_timeout: must be greater than zero")
	}
	if a := c.Metrics.Address; a != "" {
		if err := checkHostPort(a); err != nil {
			return fmt.Errorf("config: metrics.address: %q: %v", a, err)
		}
	}
	for host, r := range c.Registries {
		if host == "" || strings.ContainsAny(host, "/ ") {
			return fmt.Errorf("config: registries.%q: a registry key is a host[:port] such as docker.io", host)
		}
		for i, m := range r.Mirrors {
			if err := checkURL(m); err != nil {
				return fmt.Errorf("config: registries.%q.mirrors[%d]: %v", host, i, err)
			}
		}
		if r.Endpoint != "" {
			if err := checkURL(r.Endpoint); err != nil {
				return fmt.Errorf("config: registries.%q.endpoint: %v", host, err)
			}
		}
	}
	return nil
}

// checkURL accepts http(s)://host[:port] with an optional path-free form,
// since registries are addressed by host and the /v2/ path is implied.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/v2" {
		return fmt.Errorf("%q: a registry URL has no path", s)
	}
	return nil
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// checkHostPort accepts host:port with a port from 1 to 65535; an empty
// host means every address.
func checkHostPort(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("must be host:port, such as 127.0.0.1:9090")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// checkStreamAddress accepts host:port with a host and a port number (0 for
// any free port).
func checkStreamAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host (the server has no authentication: name a loopback address)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}
