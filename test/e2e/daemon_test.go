package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/test/testnet"
)

func TestSecondDaemonOnSameRootRefused(t *testing.T) {
	d := startDaemon(t, "")
	other := filepath.Join(d.dir, "other")
	res := runBerthd(t, 30*time.Second, "--config", d.config, "--root", d.root,
		"--state-dir", other, "--socket", filepath.Join(other, "berth.sock"))
	if res.code == 0 {
		t.Fatalf("a second berthd on the same root exited 0; stderr: %s", res.stderr)
	}
	if !strings.Contains(res.stderr, "another berthd") {
		t.Errorf("second berthd: stderr %q does not mention another berthd", res.stderr)
	}
	if _, err := os.Stat(filepath.Join(other, "berth.sock")); !os.IsNotExist(err) {
		t.Errorf("the refused berthd left a socket: %v", err)
	}
	// The first one is unaffected.
	if _, err := d.rt.Version(d.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("first berthd after the second was refused: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	d := newDaemon(t, "")
	if err := os.MkdirAll(d.state, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Lstat(d.socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	d.start() // fails the test unless berthd serves on the socket
	if _, err := d.rt.Version(d.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestSocketInUseRefused(t *testing.T) {
	d := newDaemon(t, "")
	if err := os.MkdirAll(d.state, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	res := runBerthd(t, 30*time.Second, d.args()...)
	if res.code == 0 || !strings.Contains(res.stderr, "in use") {
		t.Fatalf("berthd on a socket another process serves: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Lstat(d.socket); err != nil {
		t.Fatalf("the live socket was removed: %v", err)
	}
}

func TestUnknownConfigKeyRefused(t *testing.T) {
	d := newDaemon(t, "")
	d.writeConfig(`lgo_level = "x"`, "", "")
	res := runBerthd(t, 30*time.Second, d.args()...)
	if res.code == 0 {
		t.Fatalf("berthd with an unknown config key exited 0")
	}
	if !strings.Contains(res.stderr, "lgo_level") {
		t.Errorf("stderr %q does not name the unknown key lgo_level", res.stderr)
	}
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		t.Errorf("berthd refused its config but created the socket: %v", err)
	}

	// A bad value is refused the same way, naming its key.
	d.writeConfig("", `max_concurrent_downloads = 0`, "")
	res = runBerthd(t, 30*time.Second, d.args()...)
	if res.code == 0 || !strings.Contains(res.stderr, "max_concurrent_downloads") {
		t.Errorf("berthd with a bad value: exit %d, stderr %q", res.code, res.stderr)
	}
}

func TestSocketPermissions(t *testing.T) {
	d := startDaemon(t, "")
	fi, err := os.Lstat(d.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s is not a socket: %s", d.socket, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode %o, want 660", perm)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Errorf("socket owned by uid %d, want root", st.Uid)
	}
	di, err := os.Stat(filepath.Dir(d.socket))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&0o002 != 0 {
		t.Errorf("socket dir mode %o is world-writable", di.Mode().Perm())
	}
}

func TestWorldWritableSocketDirRefused(t *testing.T) {
	d := newDaemon(t, "")
	if err := os.MkdirAll(d.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.state, 0o777); err != nil {
		t.Fatal(err)
	}
	res := runBerthd(t, 30*time.Second, d.args()...)
	if res.code == 0 || !strings.Contains(res.stderr, "world-writable") {
		t.Fatalf("berthd with a world-writable socket dir: exit %d, stderr %q", res.code, res.stderr)
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	d := startDaemon(t, "")
	cmd, exited := d.cmd, d.exited
	d.conn.Close()
	d.conn = nil
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("berthd did not exit within 20s of SIGTERM")
	}
	d.cmd = nil
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if _, err := os.Lstat(d.socket); !os.IsNotExist(err) {
		t.Errorf("socket left after SIGTERM: %v", err)
	}
	// The root is free again: a new berthd starts on it.
	d.start()
}

func TestUnimplementedRPC(t *testing.T) {
	d := startDaemon(t, "")
	_, err := d.rt.CheckpointContainer(d.ctx(), &runtimeapi.CheckpointContainerRequest{ContainerId: "x"})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("CheckpointContainer: %v (code %s), want Unimplemented", err, status.Code(err))
	}
	// The daemon keeps serving.
	if _, err := d.rt.Version(d.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}

func networkCondition(t *testing.T, d *daemon) *runtimeapi.RuntimeCondition {
	t.Helper()
	resp, err := d.rt.Status(d.ctx(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var runtimeReady bool
	var network *runtimeapi.RuntimeCondition
	for _, c := range resp.GetStatus().GetConditions() {
		switch c.Type {
		case runtimeapi.RuntimeReady:
			runtimeReady = c.Status
		case runtimeapi.NetworkReady:
			network = c
		}
	}
	if !runtimeReady {
		t.Errorf("RuntimeReady is not true: %+v", resp.GetStatus())
	}
	if network == nil {
		t.Fatalf("Status has no NetworkReady condition: %+v", resp.GetStatus())
	}
	return network
}

func TestStatusRuntimeConfigVersion(t *testing.T) {
	d := startDaemon(t, "")
	cni := filepath.Join(d.dir, "cni")

	if c := networkCondition(t, d); c.Status || c.Reason != "NetworkPluginNotReady" {
		t.Errorf("NetworkReady without a CNI conf dir: %+v", c)
	}
	if err := os.MkdirAll(cni, 0o755); err != nil {
		t.Fatal(err)
	}
	if c := networkCondition(t, d); c.Status || c.Reason != "NetworkPluginNotReady" {
		t.Errorf("NetworkReady with an empty CNI conf dir: %+v", c)
	}
	// A file CNI does not load does not make the network ready.
	if err := os.WriteFile(filepath.Join(cni, "README"), []byte("not a config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := networkCondition(t, d); c.Status {
		t.Errorf("NetworkReady with only a README in the CNI conf dir: %+v", c)
	}
	conf := `{"cniVersion":"1.0.0","name":"berth","plugins":[{"type":"bridge","bridge":"cni0"}]}`
	if err := os.WriteFile(filepath.Join(cni, "10-berth.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := networkCondition(t, d); !c.Status {
		t.Errorf("NetworkReady with a .conflist present: %+v", c)
	}

	rc, err := d.rt.RuntimeConfig(d.ctx(), &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rc.GetLinux().GetCgroupDriver(); got != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("RuntimeConfig cgroup driver %s, want CGROUPFS", got)
	}

	v, err := d.rt.Version(d.ctx(), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "berth" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion == "" {
		t.Errorf("Version: %+v", v)
	}
}

func TestCgroupDriverSystemd(t *testing.T) {
	d := newDaemon(t, "")
	d.writeConfig(`cgroup_driver = "systemd"`, "", "")
	d.start()
	rc, err := d.rt.RuntimeConfig(d.ctx(), &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rc.GetLinux().GetCgroupDriver(); got != runtimeapi.CgroupDriver_SYSTEMD {
		t.Errorf("RuntimeConfig cgroup driver %s, want SYSTEMD", got)
	}
}

func TestConfigCommandMatchesShippedConfig(t *testing.T) {
	res := runBerthd(t, 30*time.Second, "config")
	if res.code != 0 {
		t.Fatalf("berthd config exited %d: %s", res.code, res.stderr)
	}
	shipped, err := os.ReadFile(filepath.Join("..", "..", "contrib", "berth.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if res.stdout != string(shipped) {
		t.Errorf("berthd config differs from contrib/berth.toml (regenerate it with `make contrib/berth.toml`):\n--- berthd config\n%s\n--- contrib/berth.toml\n%s", res.stdout, shipped)
	}

	res = runBerthd(t, 30*time.Second, "--version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "berthd ") {
		t.Errorf("berthd --version: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

// TestDefaultConfigStarts checks the shipped config file is one berthd
// accepts, with only the paths moved into the test directory.
func TestDefaultConfigStarts(t *testing.T) {
	d := newDaemon(t, "")
	shipped, err := os.ReadFile(filepath.Join("..", "..", "contrib", "berth.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// berthd moves itself into daemon_cgroup: a cgroup of the test's, which
	// goes with it, instead of the node's /berth/daemon.
	const shippedCgroup = "daemon_cgroup = '/berth/daemon'"
	if !strings.Contains(string(shipped), shippedCgroup) {
		t.Fatalf("contrib/berth.toml has no line %s", shippedCgroup)
	}
	cg := "/berth-e2e-" + testnet.RandHex(3)
	shipped = []byte(strings.Replace(string(shipped), shippedCgroup, "daemon_cgroup = '"+cg+"/daemon'", 1))
	d.afterStop = append(d.afterStop, func() {
		if err := cgroups.Remove(cg, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := os.WriteFile(d.config, shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	d.start() // the flags move root, state dir and socket
	if _, err := d.rt.Version(d.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestSIGTERMLetsPullFinish sends SIGTERM while a pull is in flight: the
// pull, shorter than shutdown_timeout, completes before berthd exits 0.
func TestSIGTERMLetsPullFinish(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	reg.SetDelay(time.Second)
	done := make(chan error, 1)
	ctx := d.ctx()
	go func() {
		_, err := d.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
		done <- err
	}()
	if !waitUntil(20*time.Second, func() bool { return reg.Requests() > 0 }) {
		t.Fatal("the pull did not start")
	}
	cmd, exited := d.cmd, d.exited
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pull in flight at SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the pull in flight did not end within 20s of SIGTERM")
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("berthd did not exit within 20s of SIGTERM")
	}
	d.conn.Close()
	d.conn, d.cmd = nil, nil
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	// What the pull recorded is there after a restart.
	reg.SetDelay(0)
	d.start()
	if img := d.status("busybox"); img == nil || img.Id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("the image pulled during shutdown is not stored: %+v", img)
	}
}
