package spec

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry", "-x"}, Cmd: []string{"serve", "--port=80"}}
	cmdOnly := ocispec.ImageConfig{Cmd: []string{"sh"}}
	for _, tc := range []struct {
		name          string
		command, args []string
		image         ocispec.ImageConfig
		want          []string
		err           string
	}{
		{name: "image entrypoint and cmd", image: img, want: []string{"/entry", "-x", "serve", "--port=80"}},
		{name: "image cmd only", image: cmdOnly, want: []string{"sh"}},
		{name: "command replaces entrypoint and drops cmd", command: []string{"/bin/true"}, image: img, want: []string{"/bin/true"}},
		{name: "command and args", command: []string{"sh", "-c"}, args: []string{"echo hi"}, image: img, want: []string{"sh", "-c", "echo hi"}},
		{name: "args replace cmd only", args: []string{"debug"}, image: img, want: []string{"/entry", "-x", "debug"}},
		{name: "args without entrypoint", args: []string{"top", "-b"}, image: cmdOnly, want: []string{"top", "-b"}},
		{name: "nothing to run", err: "command: no command to run"},
		{name: "empty program", command: []string{""}, err: "command: the program to run is an empty string"},
		{name: "NUL in command", command: []string{"a\x00b"}, err: "command[0]: contains a NUL byte"},
		{name: "NUL in args", command: []string{"sh"}, args: []string{"ok", "x\x00"}, err: "args[1]: contains a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := processArgs(tc.command, tc.args, tc.image)
			if wantInvalid(t, err, tc.err) {
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func kv(k, v string) *runtimeapi.KeyValue { return &runtimeapi.KeyValue{Key: k, Value: []byte(v)} }

func TestProcessEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hostname string
		image    []string
		envs     []*runtimeapi.KeyValue
		want     []string
		err      string
	}{
		{name: "nothing gets PATH", want: []string{defaultPath}},
		{name: "image PATH kept", image: []string{"PATH=/opt/bin", "A=1"}, want: []string{"PATH=/opt/bin", "A=1"}},
		{
			name:  "request wins in place",
			image: []string{"A=1", "B=2", "PATH=/bin"},
			envs:  []*runtimeapi.KeyValue{kv("B", "two"), kv("C", "3"), kv("A", "")},
			want:  []string{"A=", "B=two", "PATH=/bin", "C=3"},
		},
		{name: "request sets PATH", envs: []*runtimeapi.KeyValue{kv("PATH", "/x")}, want: []string{"PATH=/x"}},
		{
			name:     "hostname first, overridable",
			hostname: "pod-a",
			image:    []string{"HOSTNAME=img"},
			want:     []string{"HOSTNAME=img", defaultPath},
		},
		{name: "hostname", hostname: "pod-a", want: []string{"HOSTNAME=pod-a", defaultPath}},
		{name: "value with equals", envs: []*runtimeapi.KeyValue{kv("OPTS", "a=b=c")}, want: []string{"OPTS=a=b=c", defaultPath}},
		{name: "image entry without value kept", image: []string{"FLAG", "", "=bad"}, want: []string{"FLAG", defaultPath}},
		{name: "empty key", envs: []*runtimeapi.KeyValue{kv("", "x")}, err: "envs[0].key: empty name"},
		{name: "equals in key", envs: []*runtimeapi.KeyValue{kv("A", "1"), kv("B=C", "x")}, err: "envs[1].key:"},
		{name: "NUL in value", envs: []*runtimeapi.KeyValue{kv("A", "x\x00")}, err: "envs[0].value: contains a NUL byte"},
		{name: "NUL in image env", image: []string{"A=\x00"}, err: "image_config.Env[0]: contains a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := processEnv(tc.hostname, tc.image, tc.envs)
			if wantInvalid(t, err, tc.err) {
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWorkingDir(t *testing.T) {
	for _, tc := range []struct {
		request, image, want, err string
	}{
		{want: "/"},
		{image: "/app", want: "/app"},
		{image: "app/", want: "/app"},
		{request: "/work/", image: "/app", want: "/work"},
		{request: "/a/../b", want: "/b"},
		{request: "rel", err: `working_dir: "rel" is not an absolute path`},
		{request: "/a\x00", err: "working_dir: contains a NUL byte"},
	} {
		got, err := workingDir(tc.request, tc.image)
		if wantInvalid(t, err, tc.err) {
			continue
		}
		if got != tc.want {
			t.Errorf("workingDir(%q, %q) = %q, want %q", tc.request, tc.image, got, tc.want)
		}
	}
}

func TestRlimits(t *testing.T) {
	for _, tc := range []struct {
		hard uint64
		want []specs.POSIXRlimit
	}{
		{hard: 0, want: nil},
		{hard: 20000, want: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 20000, Soft: 20000}}},
		{hard: 1 << 30, want: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}}},
	} {
		if got := rlimits(tc.hard); !slices.Equal(got, tc.want) {
			t.Errorf("rlimits(%d) = %v, want %v", tc.hard, got, tc.want)
		}
	}
}
