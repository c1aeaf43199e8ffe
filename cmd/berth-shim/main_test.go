package main

import (
	"bytes"
	"errors"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// The shim's server must speak exactly what net/rpc's client expects.
func TestRPCServerSpeaksNetRPC(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var after atomic.Int32
	release := make(chan struct{})
	s := &rpcServer{
		methods: map[string]handler{
			api.MethodState: method(func(r *api.IDRequest) (*api.ContainerState, error) {
				if r.ID == "missing" {
					return nil, api.Errorf(api.ErrNotFound, "container missing")
				}
				return &api.ContainerState{ID: r.ID, Status: api.StatusRunning, Pid: 42, CreatedAt: time.Unix(1, 2)}, nil
			}),
			api.MethodWait: method(func(r *api.IDRequest) (*api.ContainerState, error) {
				<-release
				return &api.ContainerState{ID: r.ID, Status: api.StatusStopped, ExitCode: 3}, nil
			}),
			api.MethodShutdown: method(func(*api.Empty) (*api.Empty, error) { return &api.Empty{}, nil }),
		},
		after: map[string]func(){api.MethodShutdown: func() { after.Add(1) }},
	}
	go s.serve(l)

	c, err := rpc.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A blocked call does not hold up the others on the same connection.
	wait := c.Go(api.MethodWait, &api.IDRequest{ID: "w"}, new(api.ContainerState), nil)
	var st api.ContainerState
	if err := c.Call(api.MethodState, &api.IDRequest{ID: "x"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.ID != "x" || st.Pid != 42 || st.Status != api.StatusRunning || !st.CreatedAt.Equal(time.Unix(1, 2)) {
		t.Fatalf("state %+v", st)
	}
	err = c.Call(api.MethodState, &api.IDRequest{ID: "missing"}, &st)
	var se rpc.ServerError
	if !errors.As(err, &se) || string(se) != "not found: container missing" {
		t.Fatalf("error %v", err)
	}
	err = c.Call("Shim.Nope", &api.IDRequest{ID: "x"}, &st)
	if !errors.As(err, &se) || !strings.Contains(string(se), "can't find method") {
		t.Fatalf("unknown method: %v", err)
	}
	// The connection still works after an unknown method.
	if err := c.Call(api.MethodShutdown, &api.Empty{}, &api.Empty{}); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-wait.Done
	if wait.Error != nil || wait.Reply.(*api.ContainerState).ExitCode != 3 {
		t.Fatalf("wait: %v %+v", wait.Error, wait.Reply)
	}
	if after.Load() != 1 {
		t.Fatalf("after-hook ran %d times", after.Load())
	}
}

func TestCapBuffer(t *testing.T) {
	b := &capBuffer{max: 10}
	for _, p := range []string{"abc", "defgh", "ijklmnop", "q"} {
		if n, err := b.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("write %q: %d %v", p, n, err)
		}
	}
	if string(b.buf) != "abcdefghij" || !b.truncated {
		t.Fatalf("%q %v", b.buf, b.truncated)
	}
	b = &capBuffer{max: 10}
	b.Write([]byte("0123456789"))
	if b.truncated {
		t.Fatal("exactly the cap is not truncated")
	}
	b.Write(nil)
	if b.truncated {
		t.Fatal("an empty write does not truncate")
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1", "B=2"}, []string{"A=9", "C=3"})
	want := []string{"PATH=/bin", "B=2", "A=9", "C=3"}
	if !slices.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestWaitStatus(t *testing.T) {
	run := func(args ...string) syscall.WaitStatus {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Run()
		return cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	if code, msg := waitStatus(run("sh", "-c", "exit 3")); code != 3 || msg != "" {
		t.Errorf("exit 3: %d %q", code, msg)
	}
	if code, msg := waitStatus(run("sh", "-c", "kill -TERM $$")); code != 143 || msg != "killed by signal SIGTERM" {
		t.Errorf("SIGTERM: %d %q", code, msg)
	}
}

func TestReadCounter(t *testing.T) {
	f := filepath.Join(t.TempDir(), "memory.oom_control")
	os.WriteFile(f, []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0o644)
	if n, ok := readCounter(f, "oom_kill"); !ok || n != 2 {
		t.Fatalf("%d %v", n, ok)
	}
	if _, ok := readCounter(f, "nope"); ok {
		t.Fatal("missing key found")
	}
	if n, ok := oomKills(map[string]string{"memory": filepath.Dir(f)}); !ok || n != 2 {
		t.Fatalf("oomKills %d %v", n, ok)
	}
}

func TestProcStat(t *testing.T) {
	st, ppid, ok := procStat(os.Getpid())
	if !ok || ppid != os.Getppid() || !bytes.ContainsRune([]byte("RS"), rune(st)) {
		t.Fatalf("%c %d %v", st, ppid, ok)
	}
	if _, _, ok := procStat(-1); ok {
		t.Fatal("no such process")
	}
}

func TestSystemdCgroupPath(t *testing.T) {
	for p, want := range map[string]bool{
		"":                               false,
		"/berth/pod/ctr":                 false,
		"kubepods.slice:cri-berth:abc":   true,
		"/kubepods.slice:cri-berth:abc":  false,
		"relative/path":                  false,
		"system.slice:docker:container1": true,
	} {
		if got := systemdCgroupPath(p); got != want {
			t.Errorf("%q: %v", p, got)
		}
	}
}

func TestLoadSpec(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755)
	write := func(s string) {
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(s), 0o644)
	}
	write(`{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{},
	  "mounts":[{"destination":"/data","source":"data","options":["rbind"]},{"destination":"/proc","type":"proc","source":"proc"}]}`)
	spec, err := loadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Root.Path != filepath.Join(dir, "rootfs") || spec.Mounts[0].Source != filepath.Join(dir, "data") || spec.Mounts[1].Source != "proc" {
		t.Fatalf("paths not resolved against the bundle: %q %+v", spec.Root.Path, spec.Mounts)
	}
	for cfg, field := range map[string]string{
		`{`:                                     "config.json",
		`{"root":{"path":"rootfs"},"linux":{}}`: "no process",
		`{"process":{"args":[]},"root":{"path":"rootfs"},"linux":{}}`:      "process.args",
		`{"process":{"args":["sh"]},"linux":{}}`:                           "root.path",
		`{"process":{"args":["sh"]},"root":{"path":"rootfs"}}`:             "linux",
		`{"process":{"args":["sh"]},"root":{"path":"missing"},"linux":{}}`: "root.path",
	} {
		write(cfg)
		if _, err := loadSpec(dir); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want invalid naming %q", cfg, err, field)
		}
	}
}
