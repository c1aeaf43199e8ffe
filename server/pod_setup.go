package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/pkg/netns"
	"github.com/berth-runtime/berth/pkg/network"
	"github.com/berth-runtime/berth/pkg/podfiles"
	"github.com/berth-runtime/berth/server/store"
)

// podModes says which namespaces a pod shares with the node.
type podModes struct{ hostNet, hostIPC bool }

func modesOf(cfg *runtimeapi.PodSandboxConfig) podModes {
	o := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	return podModes{
		hostNet: o.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		hostIPC: o.GetIpc() == runtimeapi.NamespaceMode_NODE,
	}
}

// podHostname is the hostname the config names or, when it names none, the
// node's, as containerd and CRI-O do: the pod's name is no fallback, since
// it may be longer than the 64 bytes a hostname may have.
func podHostname(cfg *runtimeapi.PodSandboxConfig) string {
	if h := cfg.GetHostname(); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// setupPod does the effects of RunPodSandbox in order, registering the
// reverse of each on u. It returns the pod record filled in.
func (s *Server) setupPod(ctx context.Context, p *store.Pod, cfg *runtimeapi.PodSandboxConfig, u *undo) (*store.Pod, error) {
	modes := modesOf(cfg)
	pod := *p

	// The monitor needs nothing of what follows, and starting it takes as
	// long as the network: it starts now, alongside, and is joined last.
	monitor := s.launchShim(ctx, &pod)
	u.add("monitor", func() error {
		// Also after a failed launch: its directory and cgroup may exist.
		r := monitor.wait()
		return s.stopShim(&pod, r.client, r.pid)
	})

	// Namespaces: UTS goes with the network, as kubelet expects: a
	// host-network pod sees the node's hostname.
	var kinds []int
	if !modes.hostNet {
		kinds = append(kinds, netns.Net, netns.UTS)
	}
	if !modes.hostIPC {
		kinds = append(kinds, netns.IPC)
	}
	if len(kinds) > 0 {
		nsDir := filepath.Join(pod.Dir, "ns")
		if err := os.MkdirAll(nsDir, 0o700); err != nil {
			return nil, err
		}
		var paths map[int]string
		var err error
		if userns := spec.PodUserNamespace(cfg); userns != nil {
			// Owned by the pod's user namespace (pod_userns.go).
			paths, pod.PIDHolder, err = s.newPodUserNamespaces(&pod, userns, nsDir, kinds, cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_POD)
			if pod.PIDHolder > 0 {
				u.add("PID namespace", func() error { stopPIDHolder(&pod); return nil })
			}
		} else {
			paths, err = netns.NewSet(nsDir, kinds...)
		}
		if err != nil {
			return nil, fmt.Errorf("pod namespaces: %w", err)
		}
		u.add("namespaces", func() error { return removeNamespaces(paths) })
		pod.NetNS, pod.IPCNS, pod.UTSNS = paths[netns.Net], paths[netns.IPC], paths[netns.UTS]
	}
	hostname := podHostname(cfg)
	if modes.hostNet {
		hostname, _ = os.Hostname()
	} else if err := netns.SetHostname(pod.UTSNS, hostname); err != nil {
		return nil, fmt.Errorf("pod hostname: %w", err)
	}
	if sc := podLevelSysctls(cfg); len(sc) > 0 {
		if err := netns.SetSysctls(pod.NetNS, pod.IPCNS, sc); err != nil {
			return nil, invalid("linux.sysctls", "%v", err)
		}
	}

	// Network.
	var dnsFromCNI []string
	if !modes.hostNet {
		res, err := s.net.Setup(ctx, podNetwork(&pod, cfg))
		if err != nil {
			return nil, fmt.Errorf("pod network: %w", err)
		}
		u.add("network", func() error { return s.net.Teardown(context.WithoutCancel(ctx), podNetwork(&pod, cfg)) })
		for _, ip := range res.IPs {
			pod.IPs = append(pod.IPs, ip.String())
		}
		pod.CNI = res.Raw
		if res.DNS != nil {
			dnsFromCNI = res.DNS.Nameservers
		}
		if err := s.openHostPorts(&pod, cfg); err != nil {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		u.add("host ports", func() error { s.ports.Close(pod.ID); return nil })
	}

	// Files the containers get: resolv.conf, hosts, hostname.
	dns := cfg.GetDnsConfig()
	if len(dns.GetServers()) == 0 && len(dnsFromCNI) > 0 {
		dns = &runtimeapi.DNSConfig{Servers: dnsFromCNI, Searches: dns.GetSearches(), Options: dns.GetOptions()}
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	resolv, err := podfiles.ResolvConf(dns, hostResolv)
	if err != nil {
		return nil, requestError("config.", err)
	}
	hostHosts, _ := os.ReadFile("/etc/hosts")
	hosts, err := podfiles.Hosts(hostname, pod.IPs, modes.hostNet, hostHosts)
	if err != nil {
		return nil, requestError("config.", err)
	}
	hostnameFile, err := podfiles.Hostname(hostname)
	if err != nil {
		return nil, requestError("config.", err)
	}
	if err := podfiles.Write(pod.Dir, map[string][]byte{podfiles.ResolvConfFile: resolv, podfiles.HostsFile: hosts, podfiles.HostnameFile: hostnameFile}); err != nil {
		return nil, err
	}

	// /dev/shm: the pod's own tmpfs, or the node's for host IPC.
	if modes.hostIPC {
		pod.ShmPath = "/dev/shm"
	} else {
		shm := filepath.Join(pod.Dir, "shm")
		if err := os.MkdirAll(shm, 0o700); err != nil {
			return nil, err
		}
		opts := "mode=1777,size=" + strconv.FormatInt(s.cfg.Runtime.ShmSize, 10)
		owner, err := shmOwnerOptions(cfg)
		if err != nil {
			return nil, err
		}
		opts += owner
		if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
			return nil, fmt.Errorf("pod /dev/shm: %w", err)
		}
		u.add("shm", func() error { return unmountAll(shm) })
		pod.ShmPath = shm
	}

	// The pod's cgroup: kubelet names (and owns) its parent; otherwise the
	// pod gets one of its own under pod_cgroup.
	pod.CgroupPath = cfg.GetLinux().GetCgroupParent()
	if pod.CgroupPath == "" {
		pod.CgroupPath = s.cfg.Runtime.PodCgroup + "/" + pod.ID
		pod.OwnCgroup = true
	}

	r := monitor.wait()
	if r.err != nil {
		return nil, fmt.Errorf("pod monitor: %w", r.err)
	}
	pod.ShimPID = r.pid
	s.setShim(pod.ID, r.client)

	if pod.PIDHolder > 0 {
		// Made with the pod's user namespace.
		if err := s.placePIDHolder(&pod); err != nil {
			return nil, err
		}
	} else if cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_POD {
		holder, err := s.startPIDHolder(&pod)
		if err != nil {
			return nil, err
		}
		pod.PIDHolder = holder
		u.add("PID namespace", func() error { stopPIDHolder(&pod); return nil })
	}
	return &pod, nil
}

func podNetwork(p *store.Pod, cfg *runtimeapi.PodSandboxConfig) network.PodNetwork {
	md := cfg.GetMetadata()
	pn := network.PodNetwork{ID: p.ID, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(), NetNS: p.NetNS}
	for _, pm := range cfg.GetPortMappings() {
		pn.PortMappings = append(pn.PortMappings, network.PortMapping{
			HostPort:      pm.GetHostPort(),
			ContainerPort: pm.GetContainerPort(),
			Protocol:      protocolName(pm.GetProtocol()),
			HostIP:        pm.GetHostIp(),
		})
	}
	return pn
}

func protocolName(p runtimeapi.Protocol) string {
	switch p {
	case runtimeapi.Protocol_UDP:
		return "udp"
	case runtimeapi.Protocol_SCTP:
		return "sctp"
	}
	return "tcp"
}

func removeNamespaces(paths map[int]string) error {
	var first error
	for _, p := range paths {
		if p == "" {
			continue
		}
		if err := netns.Remove(p); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// unmountAll detaches every mount stacked at path; none is fine.
func unmountAll(path string) error {
	for {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == unix.EINVAL || err == unix.ENOENT {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
}

// pendingShim is a monitor being started; wait returns the outcome, the
// same on every call.
type pendingShim struct {
	done chan struct{}
	res  launched
}

type launched struct {
	client *shim.Client
	pid    int
	err    error
}

func (s *Server) launchShim(ctx context.Context, pod *store.Pod) *pendingShim {
	p := &pendingShim{done: make(chan struct{})}
	opts := shim.LaunchOptions{
		Binary:     s.shimPath,
		PodID:      pod.ID,
		Dir:        pod.ShimDir,
		CgroupPath: s.cfg.Runtime.ShimCgroup + "/" + pod.ID,
		GOMAXPROCS: s.cfg.Runtime.ShimGOMAXPROCS,
		LogPath:    filepath.Join(pod.ShimDir, "shim.log"),
	}
	// A configured runtime handler: the monitor drives its binary; the
	// built-in one: berth-runtime.
	if h, ok := s.cfg.Runtime.Handlers[pod.Handler]; ok {
		opts.Runtime, opts.RuntimeRoot = h.Path, h.Root
	} else {
		opts.BuiltinRuntime = s.runtimePath
	}
	go func() {
		defer close(p.done)
		p.res.client, p.res.pid, p.res.err = shim.Launch(ctx, opts)
	}()
	return p
}

func (p *pendingShim) wait() launched {
	<-p.done
	return p.res
}
