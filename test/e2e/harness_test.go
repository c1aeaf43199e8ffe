package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testregistry"
)

// The end-to-end tests drive the real bin/berthd through its socket. They
// need root and the binaries `make test-e2e` builds; plain `go test ./...`
// skips them.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_E2E") == "" {
		fmt.Println("e2e: BERTH_E2E not set; run `make test-e2e` (as root) to run these tests")
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		fmt.Println("e2e: must run as root")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func berthdPath(t testing.TB) string {
	p := os.Getenv("BERTHD")
	if p == "" {
		t.Fatal("BERTHD is not set")
	}
	return p
}

// daemon is one running berthd with its own root, state dir and socket.
type daemon struct {
	t       testing.TB
	dir     string
	root    string
	state   string
	socket  string
	config  string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	conn    *grpc.ClientConn
	rt      runtimeapi.RuntimeServiceClient
	img     runtimeapi.ImageServiceClient

	// confDir is network.conf_dir; empty means <dir>/cni.
	confDir string
	// afterStop runs at cleanup once berthd has stopped, before the test
	// directory is removed: whatever must not outlive the daemon (mounts,
	// processes of its pods) is undone there.
	afterStop []func()
}

// registryConfig points docker.io and every other name the tests use at
// the loopback registry, so no test can reach a public host.
func registryConfig(reg *testregistry.Registry) string {
	return fmt.Sprintf("[registries.\"docker.io\"]\nendpoint = %q\n", reg.URL())
}

// newDaemon prepares a berthd with the given extra config (TOML) but does
// not start it.
func newDaemon(t testing.TB, extraConfig string) *daemon {
	dir, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		t:       t,
		dir:     dir,
		root:    filepath.Join(dir, "root"),
		state:   filepath.Join(dir, "state"),
		socket:  filepath.Join(dir, "state", "berth.sock"),
		config:  filepath.Join(dir, "berth.toml"),
		logPath: filepath.Join(dir, "berthd.log"),
	}
	d.writeConfig("", "", extraConfig)
	t.Cleanup(func() {
		d.stop()
		for _, f := range d.afterStop {
			f()
		}
		if t.Failed() {
			if log, err := os.ReadFile(d.logPath); err == nil {
				t.Logf("berthd log (last 4 KiB):\n%s", tail(log, 4096))
			}
		}
		os.RemoveAll(dir)
	})
	return d
}

// writeConfig writes the daemon's config file. TOML allows a table only
// once, so keys of the top level and of [image] cannot simply be appended:
// top goes before the first table, image inside [image], extra (more
// tables, such as [registries."docker.io"]) at the end.
func (d *daemon) writeConfig(top, image, extra string) {
	d.t.Helper()
	confDir := d.confDir
	if confDir == "" {
		confDir = filepath.Join(d.dir, "cni")
	}
	if !strings.Contains(extra, "[runtime]") {
		// A daemon that runs no pods stays in the test's cgroup: its
		// default, /berth/daemon, would outlive the test.
		extra = "[runtime]\ndaemon_cgroup = \"\"\n" + extra
	}
	cfg := fmt.Sprintf("log_level = \"debug\"\n%s\n[image]\nauth_file = %q\n%s\n[network]\nconf_dir = %q\n%s",
		top, filepath.Join(d.dir, "auth.json"), image, confDir, extra)
	if err := os.WriteFile(d.config, []byte(cfg), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// startDaemon starts berthd and waits until its socket answers.
func startDaemon(t testing.TB, extraConfig string) *daemon {
	d := newDaemon(t, extraConfig)
	d.start()
	return d
}

func (d *daemon) args() []string {
	return []string{"--config", d.config, "--root", d.root, "--state-dir", d.state, "--socket", d.socket}
}

func (d *daemon) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.cmd = exec.Command(berthdPath(d.t), d.args()...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(d.logPath)
			d.t.Fatalf("berthd exited at start: %s", tail(log, 2048))
		default:
		}
		if _, err := os.Stat(d.socket); err == nil {
			if d.connect() == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatal("berthd did not serve within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.exited = exited
}

func (d *daemon) connect() error {
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	if _, err := rt.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		conn.Close()
		return err
	}
	d.conn, d.rt, d.img = conn, rt, runtimeapi.NewImageServiceClient(conn)
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("berthd did not stop within 20s of SIGTERM")
	}
	d.cmd = nil
}

// kill ends berthd with SIGKILL, as a crash would.
func (d *daemon) kill() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
}

func (d *daemon) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	d.t.Cleanup(cancel)
	return ctx
}

func (d *daemon) pull(name string) (string, error) {
	resp, err := d.img.PullImage(d.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}})
	if err != nil {
		return "", err
	}
	return resp.ImageRef, nil
}

func (d *daemon) mustPull(name string) string {
	d.t.Helper()
	id, err := d.pull(name)
	if err != nil {
		d.t.Fatalf("pull %s: %v", name, err)
	}
	return id
}

func (d *daemon) status(name string) *runtimeapi.Image {
	d.t.Helper()
	resp, err := d.img.ImageStatus(d.ctx(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: name}})
	if err != nil {
		d.t.Fatalf("image status %s: %v", name, err)
	}
	return resp.Image
}

func (d *daemon) list() []*runtimeapi.Image {
	d.t.Helper()
	resp, err := d.img.ListImages(d.ctx(), &runtimeapi.ListImagesRequest{})
	if err != nil {
		d.t.Fatalf("list images: %v", err)
	}
	return resp.Images
}

func (d *daemon) remove(name string) {
	d.t.Helper()
	if _, err := d.img.RemoveImage(d.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: name}}); err != nil {
		d.t.Fatalf("remove %s: %v", name, err)
	}
}

// crictl runs the real crictl against this daemon.
func (d *daemon) crictl(args ...string) (string, error) {
	bin := os.Getenv("CRICTL")
	if bin == "" {
		d.t.Fatal("CRICTL is not set")
	}
	cfg := filepath.Join(d.dir, "crictl.yaml")
	if _, err := os.Stat(cfg); err != nil {
		os.WriteFile(cfg, []byte(fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", d.socket, d.socket)), 0o644)
	}
	cmd := exec.Command(bin, append([]string{"--config", cfg}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (d *daemon) log() string {
	data, _ := os.ReadFile(d.logPath)
	return string(data)
}

func startRegistry(t testing.TB, opts testregistry.Options) *testregistry.Registry {
	t.Helper()
	reg, err := testregistry.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// pullAuth pulls with the given request credentials (nil for none).
func (d *daemon) pullAuth(name string, auth *runtimeapi.AuthConfig) (string, error) {
	resp, err := d.img.PullImage(d.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}, Auth: auth})
	if err != nil {
		return "", err
	}
	return resp.ImageRef, nil
}

// imagesDir is the image store under the daemon's root.
func (d *daemon) imagesDir(elem ...string) string {
	return filepath.Join(append([]string{d.root, "images"}, elem...)...)
}

// layerFS is the unpacked tree of the layer with this chain ID.
func (d *daemon) layerFS(chainID string, elem ...string) string {
	return filepath.Join(append([]string{d.imagesDir("layers", strings.TrimPrefix(chainID, "sha256:"), "fs")}, elem...)...)
}

// dirNames lists the names in dir; a missing dir is empty.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// waitLog waits until the daemon's log contains s.
func (d *daemon) waitLog(s string, timeout time.Duration) {
	d.t.Helper()
	if !waitUntil(timeout, func() bool { return strings.Contains(d.log(), s) }) {
		d.t.Fatalf("berthd did not log %q within %s", s, timeout)
	}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dockerName is the docker.io reference of a catalog image, which the
// harness config serves from the loopback registry.
func dockerName(info testregistry.ImageInfo) string {
	return "docker.io/" + info.Repo + ":" + info.Tag
}

// berthdResult is the outcome of a berthd run that is expected to end.
type berthdResult struct {
	stdout, stderr string
	code           int
}

// runBerthd runs berthd with args and waits at most timeout for it to exit.
func runBerthd(t testing.TB, timeout time.Duration, args ...string) berthdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthdPath(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("berthd %s did not exit within %s; stderr: %s", strings.Join(args, " "), timeout, errb.String())
	}
	res := berthdResult{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("berthd %s: %v", strings.Join(args, " "), err)
		}
		res.code = ee.ExitCode()
	}
	return res
}
