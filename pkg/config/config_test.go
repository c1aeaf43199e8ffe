package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The printed default must read back to exactly the defaults, or `berthd
// config > berth.toml` would change behaviour.
func TestMarshalRoundTrip(t *testing.T) {
	data, err := Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	if err := Decode(data, &got); err != nil {
		t.Fatalf("decode printed default: %v\n%s", err, data)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", got, want)
	}
}

// contrib/berth.toml ships as the default config; it must be what
// `berthd config` prints.
func TestContribConfigInStep(t *testing.T) {
	want, err := Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "contrib", "berth.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("contrib/berth.toml differs from `berthd config`; regenerate it with `make contrib/berth.toml`")
	}
}

func TestEveryFieldHasComment(t *testing.T) {
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name := prefix + strings.Split(f.Tag.Get("toml"), ",")[0]
			if f.Tag.Get("comment") == "" {
				t.Errorf("field %s has no comment tag", name)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
				walk(f.Type, name+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	walk(reflect.TypeOf(Registry{}), "registries.*.")
}

func TestDecodeValues(t *testing.T) {
	in := `
log_level = "debug"
[image]
pull_progress_timeout = "90s"
max_concurrent_downloads = 2
[registries."docker.io"]
mirrors = ["http://127.0.0.1:5000"]
endpoint = "http://127.0.0.1:5000"
[registries."registry.example:5000"]
insecure = true
`
	cfg := Default()
	if err := Decode([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "debug" || cfg.Image.PullProgressTimeout.D() != 90*time.Second || cfg.Image.MaxConcurrentDownloads != 2 {
		t.Fatalf("values not applied: %+v", cfg)
	}
	if r := cfg.Registries["docker.io"]; len(r.Mirrors) != 1 || r.Endpoint != "http://127.0.0.1:5000" {
		t.Fatalf("docker.io registry: %+v", r)
	}
	if !cfg.Registries["registry.example:5000"].Insecure {
		t.Fatal("insecure not read")
	}
	if cfg.Root != "/var/lib/berth" {
		t.Fatal("unset key lost its default")
	}
}

// Each bad file must fail with a message that names the offending key.
func TestBadConfigNamesKey(t *testing.T) {
	cases := []struct{ name, in, key string }{
		{"unknown top key", `lgo_level = "info"`, "lgo_level"},
		{"unknown nested key", "[image]\nmax_downloads = 3", "image.max_downloads"},
		{"unknown registry key", "[registries.\"docker.io\"]\nmirror = [\"http://x\"]", "mirror"},
		{"bad log level", `log_level = "loud"`, "log_level"},
		{"bad log format", `log_format = "xml"`, "log_format"},
		{"bad duration", "[image]\npull_progress_timeout = \"soon\"", "pull_progress_timeout"},
		{"zero downloads", "[image]\nmax_concurrent_downloads = 0", "image.max_concurrent_downloads"},
		{"wrong type", `root = 3`, "root"},
		{"relative root", `root = "var/lib"`, "root"},
		{"mirror without scheme", "[registries.\"docker.io\"]\nmirrors = [\"127.0.0.1:5000\"]", "mirrors[0]"},
		{"endpoint with path", "[registries.\"docker.io\"]\nendpoint = \"http://h/x\"", "endpoint"},
		{"cgroup driver", `cgroup_driver = "openrc"`, "cgroup_driver"},
		{"stream address without host", "[stream]\naddress = \":0\"", "stream.address"},
		{"stream address without port", "[stream]\naddress = \"127.0.0.1\"", "stream.address"},
		{"metrics address without port", "[metrics]\naddress = \"127.0.0.1\"", "metrics.address"},
		{"metrics port zero", "[metrics]\naddress = \"127.0.0.1:0\"", "metrics.address"},
		{"relative shim path", "[runtime]\nshim_path = \"bin/berth-shim\"", "runtime.shim_path"},
		{"relative runtime path", "[runtime]\nruntime_path = \"berth-runtime\"", "runtime.runtime_path"},
		{"relative holder path", "[runtime]\npidns_holder_path = \"holder\"", "runtime.pidns_holder_path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "berth.toml")
			if err := os.WriteFile(path, []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, true)
			if err == nil {
				t.Fatalf("accepted %q", tc.in)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	cfg, err := Load(missing, false)
	if err != nil {
		t.Fatalf("missing default file: %v", err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatal("missing file did not give defaults")
	}
	if _, err := Load(missing, true); err == nil {
		t.Fatal("a missing file named with --config must fail")
	}
}

func TestImportPath(t *testing.T) {
	c := Default()
	c.Root = "/tmp/r"
	if got := c.ImportPath(); got != "/tmp/r/import" {
		t.Fatalf("relative import dir: %s", got)
	}
	c.Image.ImportDir = "/srv/import"
	if got := c.ImportPath(); got != "/srv/import" {
		t.Fatalf("absolute import dir: %s", got)
	}
}
