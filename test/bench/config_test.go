package main

import (
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/berth-runtime/berth/pkg/config"
)

// The berthd config must be one berthd accepts: it refuses unknown keys,
// and a refused config would only show at benchmark time.
func TestBerthdConfigIsValid(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	if err := config.Decode([]byte(berthdConfig(dir, berthdSettings{registryURL: "http://127.0.0.1:5000"})), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := cfg.Registries["docker.io"]
	if r.Endpoint != "http://127.0.0.1:5000" || len(r.Mirrors) != 1 || r.Mirrors[0] != "http://127.0.0.1:5000" {
		t.Errorf("docker.io = %+v", r)
	}
	for _, p := range []string{cfg.Image.AuthFile, cfg.Network.ConfDir} {
		if !strings.HasPrefix(p, dir) {
			t.Errorf("%s is outside the benchmark's directory", p)
		}
	}
}

// The containerd config must keep every path under the benchmark's
// directory and send docker.io to the registry.
func TestContainerdConfig(t *testing.T) {
	dir := "/tmp/berth-bench-x/containerd"
	var c struct {
		Version  int
		Root     string
		State    string
		Temp     string
		Disabled []string `toml:"disabled_plugins"`
		GRPC     struct{ Address string }
		TTRPC    struct{ Address string }
		Debug    struct{ Address string }
		Metrics  struct{ Address string }
		Plugins  map[string]map[string]any
	}
	if err := toml.Unmarshal([]byte(containerdConfig(dir, dir+"/state/containerd.sock", containerdSettings{registryURL: "http://127.0.0.1:5000"})), &c); err != nil {
		t.Fatal(err)
	}
	if c.Version != 2 {
		t.Errorf("version = %d", c.Version)
	}
	for name, p := range map[string]string{"root": c.Root, "state": c.State, "temp": c.Temp, "grpc": c.GRPC.Address, "ttrpc": c.TTRPC.Address} {
		if !strings.HasPrefix(p, dir+"/") {
			t.Errorf("%s = %q, outside %s", name, p, dir)
		}
	}
	if c.Debug.Address != "" || c.Metrics.Address != "" {
		t.Errorf("debug or metrics listener configured: %q %q", c.Debug.Address, c.Metrics.Address)
	}
	if !contains(c.Disabled, "io.containerd.internal.v1.opt") {
		t.Errorf("the opt plugin (writes /opt/containerd) is enabled")
	}
	cri := c.Plugins["io.containerd.grpc.v1.cri"]
	if cri == nil {
		t.Fatal("no CRI plugin config")
	}
	if img, _ := cri["sandbox_image"].(string); strings.HasPrefix(img, "registry.k8s.io") || !strings.HasPrefix(img, "docker.io/") {
		t.Errorf("sandbox_image %q is not served by the test registry", img)
	}
	cni, _ := cri["cni"].(map[string]any)
	for _, k := range []string{"bin_dir", "conf_dir"} {
		if p, _ := cni[k].(string); !strings.HasPrefix(p, dir+"/") {
			t.Errorf("cni.%s = %q, outside %s", k, p, dir)
		}
	}
	reg, _ := cri["registry"].(map[string]any)
	mirrors, _ := reg["mirrors"].(map[string]any)
	hub, _ := mirrors["docker.io"].(map[string]any)
	eps, _ := hub["endpoint"].([]any)
	if len(eps) != 1 || eps[0] != "http://127.0.0.1:5000" {
		t.Errorf("docker.io mirror endpoints = %v", eps)
	}
}

// The pod benchmark's berthd reads the shared CNI config and plugins, and
// still keeps everything else inside its directory.
func TestBerthdPodConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	set := berthdSettings{registryURL: "http://127.0.0.1:5000", confDir: "/tmp/x/cni/net.d", pluginDirs: []string{cniPluginDir}, podCgroup: "/berth-bench/berthd/pods"}
	if err := config.Decode([]byte(berthdConfig(dir, set)), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Network.ConfDir != set.confDir || len(cfg.Network.PluginDirs) != 1 || cfg.Network.PluginDirs[0] != cniPluginDir {
		t.Errorf("network = %+v", cfg.Network)
	}
	if cfg.Runtime.PodCgroup != set.podCgroup || cfg.Runtime.DaemonCgroup != "" {
		t.Errorf("runtime = %+v", cfg.Runtime)
	}
	if !strings.HasPrefix(cfg.Image.AuthFile, dir) {
		t.Errorf("auth file %s is outside the benchmark's directory", cfg.Image.AuthFile)
	}
}

// The pod benchmark's containerd runs pods: cgroups on, the pause image
// from the test registry, the shared CNI config, runc's state inside dir.
func TestContainerdPodConfig(t *testing.T) {
	dir := "/tmp/berth-bench-x/containerd"
	var c struct {
		Plugins map[string]map[string]any
	}
	set := containerdSettings{registryURL: "http://127.0.0.1:5000", sandboxImage: "docker.io/berth/pause:latest",
		cniBinDir: cniPluginDir, cniConfDir: "/tmp/berth-bench-x/cni/net.d", cgroups: true}
	if err := toml.Unmarshal([]byte(containerdConfig(dir, dir+"/state/containerd.sock", set)), &c); err != nil {
		t.Fatal(err)
	}
	cri := c.Plugins["io.containerd.grpc.v1.cri"]
	if cri["sandbox_image"] != set.sandboxImage || cri["disable_cgroup"] != false || cri["systemd_cgroup"] != false ||
		cri["netns_mounts_under_state_dir"] != true {
		t.Errorf("cri = %v", cri)
	}
	cni, _ := cri["cni"].(map[string]any)
	if cni["bin_dir"] != cniPluginDir || cni["conf_dir"] != set.cniConfDir {
		t.Errorf("cni = %v", cni)
	}
	ctrd, _ := cri["containerd"].(map[string]any)
	rts, _ := ctrd["runtimes"].(map[string]any)
	runc, _ := rts["runc"].(map[string]any)
	opts, _ := runc["options"].(map[string]any)
	if ctrd["default_runtime_name"] != "runc" || ctrd["snapshotter"] != "overlayfs" || runc["runtime_type"] != "io.containerd.runc.v2" ||
		opts["SystemdCgroup"] != false {
		t.Errorf("containerd = %v", ctrd)
	}
	if root, _ := opts["Root"].(string); !strings.HasPrefix(root, dir+"/") {
		t.Errorf("runc root %q outside %s", root, dir)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestContactedHosts(t *testing.T) {
	log := `time="t" level=debug msg=resolving host="127.0.0.1:39919"
time="t" level=debug msg="do request" host="127.0.0.1:39919" request.method=GET url="http://127.0.0.1:39919/v2/berth/big/manifests/latest"
time="t" level=debug msg="fetch failed" url="https://registry-1.docker.io/v2/berth/big/manifests/latest"
time="t" level=info msg="PullImage \"docker.io/berth/big:latest\""
`
	hosts, err := contactedHosts(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:39919", "registry-1.docker.io"}; strings.Join(hosts, ",") != strings.Join(want, ",") {
		t.Errorf("contactedHosts = %v, want %v", hosts, want)
	}
	if err := onlyHost(hosts, "127.0.0.1:39919"); err == nil || !strings.Contains(err.Error(), "registry-1.docker.io") {
		t.Errorf("onlyHost = %v, want an error naming registry-1.docker.io", err)
	}
	if err := onlyHost([]string{"127.0.0.1:39919"}, "127.0.0.1:39919"); err != nil {
		t.Error(err)
	}
	if err := onlyHost(nil, "127.0.0.1:39919"); err == nil {
		t.Error("a log without requests passed the check")
	}
}
