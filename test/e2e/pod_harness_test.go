package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/test/mountinfo"
	"github.com/berth-runtime/berth/test/testnet"
	"github.com/berth-runtime/berth/test/testregistry"
)

// podDaemon is a berthd that runs pods: a CNI network of its own
// (test/testnet: bridge, host-local, portmap, loopback, no masquerade),
// docker.io served by a loopback registry, its monitors' and pods' cgroups
// (and its own) under one cgroup of the test, and a short state dir: a
// monitor's socket is <state>/shims/<64-hex pod id>/shim.sock and must fit
// in the 108 bytes of a unix socket address, which a state dir under
// $TMPDIR/berth-e2e-NNN does not.
type podDaemon struct {
	*daemon
	net    *testnet.Env
	reg    *testregistry.Registry
	cgroup string // e.g. /berth-e2e-1a2b3c; daemon, shims and pods below it
	logDir string // pods' log directories go below it
	runDir string // the state dir it started with, removed at cleanup
}

// startPodDaemon starts such a berthd. runtimeKeys are extra keys of the
// [runtime] table (e.g. "exec_output_limit = 1024").
func startPodDaemon(t *testing.T, runtimeKeys string) *podDaemon {
	t.Helper()
	return startPodDaemonWith(t, podDaemonOptions{runtime: runtimeKeys})
}

type podDaemonOptions struct {
	runtime string // extra keys of [runtime]
	network string // extra keys of [network]
	// conflist writes the CNI config into env.ConfDir; nil means
	// env.WriteConflist(true).
	conflist func(env *testnet.Env)
}

// startPodDaemonWith starts a pod daemon with more than runtime keys.
func startPodDaemonWith(t *testing.T, o podDaemonOptions) *podDaemon {
	t.Helper()
	env := testnet.New(t)
	if o.conflist != nil {
		o.conflist(env)
	} else {
		env.WriteConflist(true)
	}
	reg := startRegistry(t, testregistryOptions())
	suffix := testnet.RandHex(3)
	cg := "/berth-e2e-" + suffix
	// extra follows the [network] table's conf_dir line.
	extra := fmt.Sprintf("%s\n[runtime]\ndaemon_cgroup = %q\nshim_cgroup = %q\npod_cgroup = %q\n%s\n%s",
		o.network, cg+"/daemon", cg+"/shims", cg+"/pods", o.runtime, registryConfig(reg))
	d := newDaemon(t, extra)
	p := &podDaemon{daemon: d, net: env, reg: reg, cgroup: cg, logDir: filepath.Join(d.dir, "logs")}
	d.state = "/run/berth-e2e-" + suffix
	p.runDir = d.state
	d.socket = filepath.Join(d.state, "berth.sock")
	d.confDir = env.ConfDir
	d.writeConfig("", "", extra)
	d.afterStop = append(d.afterStop, p.forceCleanup)
	// Runs before berthd stops: pods go through the CRI, as kubelet would
	// remove them, so that a daemon bug in removal fails the test.
	t.Cleanup(p.removeAllPods)
	d.start()
	return p
}

// imageName is the docker.io name of a catalog image, which this daemon
// pulls from its loopback registry.
func (p *podDaemon) imageName(catalogName string) string {
	return dockerName(p.reg.Image(catalogName))
}

func itoa[T ~int | ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

// removeAllPods stops and removes every pod through the CRI.
func (p *podDaemon) removeAllPods() {
	if p.conn == nil {
		return // killed by the test and not restarted
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, err := p.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		p.t.Errorf("cleanup: list pods: %v", err)
		return
	}
	for _, pod := range pods.Items {
		if _, err := p.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.Id}); err != nil {
			p.t.Errorf("cleanup: stop pod %s: %v", pod.Id, err)
		}
		if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.Id}); err != nil {
			p.t.Errorf("cleanup: remove pod %s: %v", pod.Id, err)
		}
	}
}

// forceCleanup runs once berthd has stopped: whatever of its pods is left
// (after a failure, or a test that killed berthd) is killed, unmounted and
// removed, so that nothing of the test outlives it. Every process in the
// test's cgroup was started by its berthd.
func (p *podDaemon) forceCleanup() {
	if err := cgroups.Remove(p.cgroup, true); err != nil {
		p.t.Logf("cleanup: cgroup %s: %v", p.cgroup, err)
	}
	for _, m := range mountsUnder(p.dir, p.state, p.runDir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			p.t.Logf("cleanup: unmount %s: %v", m, err)
		}
	}
	os.RemoveAll(p.state)
	os.RemoveAll(p.runDir)
}

// mountsUnder lists the mount points at or below any of dirs, deepest
// first.
func mountsUnder(dirs ...string) []string {
	return mountinfo.Under(mountinfo.Read(), dirs...)
}

// cgroupMounts lists where each cgroup hierarchy is mounted.
func cgroupMounts() []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, q := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && len(q) >= 1 && (q[0] == "cgroup" || q[0] == "cgroup2") && f[3] == "/" {
			out = append(out, mountinfo.Unescape(f[4]))
		}
	}
	return out
}

// cgroupDirs lists the directories of the cgroup path p that exist, on
// any hierarchy.
func cgroupDirs(p string) []string {
	var out []string
	for _, m := range cgroupMounts() {
		dir := filepath.Join(m, p)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			out = append(out, dir)
		}
	}
	return out
}

// procsWithArgs lists the PIDs whose command line holds every one of args.
func procsWithArgs(args ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		all := true
		for _, a := range args {
			if !bytes.Contains(cmdline, []byte(a)) {
				all = false
			}
		}
		if all {
			out = append(out, pid)
		}
	}
	return out
}

// alive says whether pid runs (a zombie does not count).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// podConfig is a pod as kubelet would describe it: its own network, IPC
// and UTS namespaces, a PID namespace per container, a log directory.
func (p *podDaemon) podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: testnet.RandHex(8)},
		Hostname:     name,
		LogDirectory: filepath.Join(p.logDir, name),
		Labels:       map[string]string{"test": "e2e"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

// runPod runs a pod and returns its ID.
func (p *podDaemon) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	p.t.Helper()
	resp, err := p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		p.t.Fatalf("RunPodSandbox %s: %v", cfg.GetMetadata().GetName(), err)
	}
	p.net.AddID(resp.PodSandboxId)
	return resp.PodSandboxId
}

// ctrConfig is a container running cmd (as its command, the image's
// entrypoint replaced), logging to <name>.log in the pod's log directory.
func ctrConfig(name, image string, cmd ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  cmd,
		LogPath:  name + ".log",
		Labels:   map[string]string{"container": name},
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
	}
}

func (p *podDaemon) createCtr(podID string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	p.t.Helper()
	resp, err := p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: podCfg})
	if err != nil {
		p.t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return resp.ContainerId
}

func (p *podDaemon) startCtr(id string) {
	p.t.Helper()
	if _, err := p.rt.StartContainer(p.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		p.t.Fatalf("StartContainer %s: %v", id, err)
	}
}

// runCtr creates and starts a container.
func (p *podDaemon) runCtr(podID string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	p.t.Helper()
	id := p.createCtr(podID, podCfg, cfg)
	p.startCtr(id)
	return id
}

func (p *podDaemon) ctrStatus(id string) *runtimeapi.ContainerStatus {
	p.t.Helper()
	resp, err := p.rt.ContainerStatus(p.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		p.t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return resp.Status
}

// ctrInfo is the verbose info of ContainerStatus.
func (p *podDaemon) ctrInfo(id string) map[string]any {
	p.t.Helper()
	resp, err := p.rt.ContainerStatus(p.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		p.t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		p.t.Fatalf("ContainerStatus %s verbose info %q: %v", id, resp.Info["info"], err)
	}
	return info
}

func (p *podDaemon) podStatus(id string) *runtimeapi.PodSandboxStatus {
	p.t.Helper()
	resp, err := p.rt.PodSandboxStatus(p.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		p.t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	return resp.Status
}

// podInfo is the verbose info of PodSandboxStatus.
func (p *podDaemon) podInfo(id string) map[string]any {
	p.t.Helper()
	resp, err := p.rt.PodSandboxStatus(p.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		p.t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		p.t.Fatalf("PodSandboxStatus %s verbose info %q: %v", id, resp.Info["info"], err)
	}
	return info
}

// waitExited waits until the container is EXITED and returns its status.
func (p *podDaemon) waitExited(id string, timeout time.Duration) *runtimeapi.ContainerStatus {
	p.t.Helper()
	var st *runtimeapi.ContainerStatus
	if !waitUntil(timeout, func() bool {
		st = p.ctrStatus(id)
		return st.State == runtimeapi.ContainerState_CONTAINER_EXITED
	}) {
		p.t.Fatalf("container %s (%s) not exited within %s: %v", st.GetMetadata().GetName(), id, timeout, st)
	}
	return st
}

// execSync runs cmd in a container.
func (p *podDaemon) execSync(id string, timeout int64, cmd ...string) (*runtimeapi.ExecSyncResponse, error) {
	return p.rt.ExecSync(p.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
}

// logPath is where a container of the pod logs.
func logPath(podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	return filepath.Join(podCfg.GetLogDirectory(), cfg.GetLogPath())
}

// logRecord is one line of a CRI log file.
type logRecord struct {
	time    time.Time
	stream  string
	tag     string
	content string
}

// parseCRILog parses a CRI log file strictly: every line must be
// "<RFC 3339 nano timestamp> <stdout|stderr> <P|F> <content>".
func parseCRILog(t testing.TB, path string) []logRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("container log: %v", err)
	}
	return parseCRILogData(t, path, data)
}

func parseCRILogData(t testing.TB, path string, data []byte) []logRecord {
	t.Helper()
	var recs []logRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		parts := strings.SplitN(line, " ", 4)
		if len(parts) < 3 {
			t.Fatalf("%s:%d: not a CRI log line: %q", path, n, line)
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			t.Fatalf("%s:%d: timestamp %q: %v", path, n, parts[0], err)
		}
		if parts[1] != "stdout" && parts[1] != "stderr" {
			t.Fatalf("%s:%d: stream %q", path, n, parts[1])
		}
		if parts[2] != "P" && parts[2] != "F" {
			t.Fatalf("%s:%d: tag %q", path, n, parts[2])
		}
		r := logRecord{time: ts, stream: parts[1], tag: parts[2]}
		if len(parts) == 4 {
			r.content = parts[3]
		}
		recs = append(recs, r)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s: does not end with a newline", path)
	}
	return recs
}

// logText joins a stream's records into what the container wrote: P
// pieces continue, F ends a line. stream "" means both.
func logText(recs []logRecord, stream string) string {
	var b strings.Builder
	for _, r := range recs {
		if stream != "" && r.stream != stream {
			continue
		}
		b.WriteString(r.content)
		if r.tag == "F" {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// readLogText reads a log file that may not exist yet, without failing on
// a line the container is writing at that moment.
func readLogText(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	return logText(parseCRILogData(t, path, data), "")
}

// waitLogContains waits until the container's log holds s.
func waitLogContains(t testing.TB, path, s string, timeout time.Duration) string {
	t.Helper()
	var text string
	if !waitUntil(timeout, func() bool { text = readLogText(t, path); return strings.Contains(text, s) }) {
		t.Fatalf("log %s does not contain %q within %s:\n%s", path, s, timeout, tail([]byte(text), 2048))
	}
	return text
}

// wantCode fails the test unless err is a gRPC error of code whose message
// holds every one of parts.
func wantCode(t testing.TB, what string, err error, code codes.Code, parts ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: %v (code %s), want %s", what, err, status.Code(err), code)
		return
	}
	for _, s := range parts {
		if !strings.Contains(status.Convert(err).Message(), s) {
			t.Errorf("%s: message %q does not name %q", what, status.Convert(err).Message(), s)
		}
	}
}
