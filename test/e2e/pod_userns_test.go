package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// usernsPodConfig is a pod with a user namespace of its own mapping
// container IDs 0-65535 to host 100000-165535 (Kubernetes' hostUsers:
// false). Its containers share one PID namespace, as in critest's spec.
func (p *podDaemon) usernsPodConfig(name string) *runtimeapi.PodSandboxConfig {
	cfg := p.podConfig(name)
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{
		Pid:           runtimeapi.NamespaceMode_POD,
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m},
	}
	return cfg
}

// mapFields is the uid_map text as fields, one slice a line.
func mapFields(s string) [][]string {
	var out [][]string
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// TestPodUserNamespace runs a pod in its own user namespace: its
// containers see the mapping, own the image's files through the idmapped
// layers, write /etc and /dev/shm, read the pod's files, are reachable on
// the pod's IP; and nothing stays mounted after the pod is removed.
func TestPodUserNamespace(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")

	st, err := p.rt.Status(p.ctx(), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	handlers := map[string]bool{}
	for _, h := range st.RuntimeHandlers {
		handlers[h.Name] = h.GetFeatures().GetUserNamespaces()
	}
	if !handlers[""] {
		t.Fatalf("the default handler does not announce user namespaces: %v", st.RuntimeHandlers)
	}

	podCfg := p.usernsPodConfig("userns")
	// A network sysctl is written by berthd from outside, an IPC one by
	// runc from inside (the namespace's root only may write it).
	podCfg.Linux.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmni": "1024"}
	pod := p.runPod(podCfg)
	nsDir := filepath.Join(p.state, "pods", pod, "ns")
	for _, ns := range []string{"user", "net", "ipc", "uts"} {
		if len(mountsUnder(filepath.Join(nsDir, ns))) == 0 {
			t.Errorf("%s namespace of the pod is not pinned", ns)
		}
	}
	// The shared PID namespace's first process lives in the pod's user
	// namespace as its root, not as the node's root.
	holders := procsWithArgs("pidns-holder", pod)
	if len(holders) != 1 {
		t.Fatalf("PID namespace holders of the pod: %v", holders)
	}
	var holderNS, pinNS, holderProc syscall.Stat_t
	syscall.Stat(fmt.Sprintf("/proc/%d/ns/user", holders[0]), &holderNS)
	syscall.Stat(filepath.Join(nsDir, "user"), &pinNS)
	if holderNS.Ino == 0 || holderNS.Ino != pinNS.Ino {
		t.Errorf("holder's user namespace %d, the pod's %d", holderNS.Ino, pinNS.Ino)
	}
	if err := syscall.Stat(fmt.Sprintf("/proc/%d", holders[0]), &holderProc); err != nil || holderProc.Uid != 100000 {
		t.Errorf("holder runs as host %d (%v), want 100000", holderProc.Uid, err)
	}
	opts := p.podStatus(pod).GetLinux().GetNamespaces().GetOptions().GetUsernsOptions()
	if opts.GetMode() != runtimeapi.NamespaceMode_POD || len(opts.GetUids()) != 1 || opts.GetUids()[0].GetHostId() != 100000 {
		t.Errorf("PodSandboxStatus reports userns options %v", opts)
	}

	script := strings.Join([]string{
		"cat /proc/self/uid_map",
		"echo busybox-owner=$(stat -c %u /bin/busybox)",
		"echo written > /etc/created && echo etc-owner=$(stat -c %u /etc/created)",
		"echo x > /dev/shm/x && echo shm-ok",
		"echo sysctls=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start),$(cat /proc/sys/kernel/shmmni)",
		"cat /etc/hosts /etc/resolv.conf > /dev/null && echo hostname=$(cat /etc/hostname)",
		"exec nc -ll -p 8080 -e echo userns-pod",
	}, "; ")
	cfg := ctrConfig("server", "busybox", "sh", "-c", script)
	// kubelet repeats the pod's namespace options for each container.
	cfg.Linux.SecurityContext.NamespaceOptions = podCfg.Linux.SecurityContext.NamespaceOptions
	ctr := p.runCtr(pod, podCfg, cfg)
	text := waitLogContains(t, logPath(podCfg, cfg), "hostname=", 20*time.Second)

	if f := mapFields(text); len(f) == 0 || strings.Join(f[0], " ") != "0 100000 65536" {
		t.Errorf("uid_map inside is %q, want 0 100000 65536", text)
	}
	for _, want := range []string{"busybox-owner=0", "etc-owner=0", "shm-ok", "sysctls=0,1024", "hostname=userns"} {
		if !strings.Contains(text, want) {
			t.Errorf("container output lacks %q:\n%s", want, text)
		}
	}
	// On the host, what the container's root wrote belongs to 100000.
	var fi syscall.Stat_t
	created := filepath.Join(p.root, "containers", ctr, "upper", "etc", "created")
	if err := syscall.Stat(created, &fi); err != nil {
		t.Errorf("created file not in the upper dir: %v", err)
	} else if fi.Uid != 100000 || fi.Gid != 100000 {
		t.Errorf("%s owned by %d:%d on the host, want 100000", created, fi.Uid, fi.Gid)
	}

	// Exec joins the same user namespace.
	res, err := p.execSync(ctr, 10, "cat", "/proc/self/uid_map")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec: %v %v", err, res)
	}
	if f := mapFields(string(res.Stdout)); len(f) == 0 || strings.Join(f[0], " ") != "0 100000 65536" {
		t.Errorf("uid_map in exec is %q", res.Stdout)
	}

	// The pod's network works as for any pod: the node reaches its IP.
	podIP := net.ParseIP(p.podStatus(pod).GetNetwork().GetIp())
	if podIP == nil || !p.net.Subnet.Contains(podIP) {
		t.Fatalf("pod IP %q is not in the test subnet %s", p.podStatus(pod).GetNetwork().GetIp(), p.net.Subnet)
	}
	waitAnswer(t, net.JoinHostPort(podIP.String(), "8080"), "userns-pod", 10*time.Second)

	// A user the mapping does not cover is refused before anything starts.
	bad := ctrConfig("unmapped", "busybox", "true")
	bad.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 70000}
	_, err = p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: bad, SandboxConfig: podCfg})
	wantCode(t, "unmapped user", err, codes.InvalidArgument, "run_as_user")

	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(p.root, p.state); len(m) != 0 {
		t.Errorf("mounts left after removal: %v", m)
	}
	if _, err := os.Stat(nsDir); !os.IsNotExist(err) {
		t.Errorf("%s left: %v", nsDir, err)
	}
	if !waitUntil(5*time.Second, func() bool { return len(procsWithArgs("pidns-holder", pod)) == 0 }) {
		t.Errorf("PID namespace holder left: %v", procsWithArgs("pidns-holder", pod))
	}
}

// TestPodUserNamespaceNode: mode NODE keeps the node's users.
func TestPodUserNamespaceNode(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("userns-node")
	podCfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	pod := p.runPod(podCfg)
	cfg := ctrConfig("map", "busybox", "cat", "/proc/self/uid_map")
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{
		Pid: runtimeapi.NamespaceMode_CONTAINER, UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
	}
	ctr := p.runCtr(pod, podCfg, cfg)
	if st := p.waitExited(ctr, 20*time.Second); st.ExitCode != 0 {
		t.Fatalf("exit %d", st.ExitCode)
	}
	host, _ := os.ReadFile("/proc/self/uid_map")
	got := readLogText(t, logPath(podCfg, cfg))
	if fmt.Sprint(mapFields(got)) != fmt.Sprint(mapFields(string(host))) {
		t.Errorf("uid_map inside %q, on the node %q", got, host)
	}
	if _, err := os.Stat(filepath.Join(p.state, "pods", pod, "ns", "user")); !os.IsNotExist(err) {
		t.Errorf("a NODE pod got a user namespace: %v", err)
	}
}

// TestPodUserNamespaceInvalid: what CRI does not allow is refused with
// InvalidArgument naming the field, and leaves no pod behind.
func TestPodUserNamespaceInvalid(t *testing.T) {
	p := startPodDaemon(t, "")
	const f = "config.linux.security_context.namespace_options"
	m := func(c, h, l uint32) *runtimeapi.IDMapping {
		return &runtimeapi.IDMapping{ContainerId: c, HostId: h, Length: l}
	}
	for _, tc := range []struct {
		name  string
		opts  *runtimeapi.NamespaceOption
		field string
	}{
		{"two mappings", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{m(0, 1000, 100000), m(0, 2000, 100000)}, Gids: []*runtimeapi.IDMapping{m(0, 1000, 100000)}}}, f + ".userns_options.uids"},
		{"root unmapped", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{m(1, 1000, 100000)}, Gids: []*runtimeapi.IDMapping{m(1, 1000, 100000)}}}, f + ".userns_options.uids[0].container_id"},
		{"container mode", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}}, f + ".userns_options.mode"},
		{"target mode", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}}, f + ".userns_options.mode"},
		{"host network", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{m(0, 100000, 65536)}, Gids: []*runtimeapi.IDMapping{m(0, 100000, 65536)}}}, f + ".network"},
	} {
		cfg := p.podConfig("userns-bad")
		cfg.Linux.SecurityContext.NamespaceOptions = tc.opts
		_, err := p.rt.RunPodSandbox(p.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		wantCode(t, tc.name, err, codes.InvalidArgument, tc.field)
	}
	pods, err := p.rt.ListPodSandbox(p.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("refused pods left %d pods", len(pods.Items))
	}
}

// TestPodUserNamespaceVolumes: in a pod with its own user namespace, a
// host directory mounted with the pod's mappings (as kubelet sends every
// volume) and an image volume show the node root's files as the
// container root's; the container's root writes into the host directory
// as the node's root, and the image volume stays read-only.
func TestPodUserNamespaceVolumes(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	vol := p.imageName("multilayer")
	p.mustPull(vol)
	hostDir := t.TempDir()
	// The container's root (host 100000) must be able to reach it.
	for d := hostDir; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o001)
		}
	}
	if err := os.WriteFile(filepath.Join(hostDir, "from-node"), []byte("node\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(hostDir, 0o755)

	podCfg := p.usernsPodConfig("userns-volumes")
	pod := p.runPod(podCfg)
	m := podCfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions.Uids
	cfg := ctrConfig("vols", "busybox", "sleep", "3600")
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: hostDir, UidMappings: m, GidMappings: m},
		{ContainerPath: "/img", Readonly: true, Image: &runtimeapi.ImageSpec{Image: vol}},
	}
	id := p.runCtr(pod, podCfg, cfg)

	res, err := p.execSync(id, 10, "sh", "-c", "stat -c %u:%g /data/from-node /img/data/b.txt /img/bin/busybox; echo hi > /data/from-container && echo wrote; echo x > /img/new 2>/dev/null || echo image-volume-read-only")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Stdout), "0:0\n0:0\n0:0\nwrote\nimage-volume-read-only\n"; got != want {
		t.Errorf("inside the pod:\n%s\nwant:\n%s(stderr %s)", got, want, res.Stderr)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(hostDir, "from-container"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("the container root's file is owned by %d:%d on the node, want 0:0 (idmapped back)", st.Uid, st.Gid)
	}

	// Mappings other than the pod's cannot be honoured.
	bad := ctrConfig("bad-map", "busybox", "true")
	bad.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: hostDir,
		UidMappings: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 200000, Length: 65536}}}}
	if _, err := p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: bad, SandboxConfig: podCfg}); err == nil || !strings.Contains(err.Error(), "mounts[0].uidMappings") {
		t.Errorf("CreateContainer with another mapping: %v", err)
	}

	if _, err := p.rt.StopPodSandbox(p.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.RemovePodSandbox(p.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(p.root, p.state); len(m) != 0 {
		t.Errorf("mounts left after removal: %v", m)
	}
}
