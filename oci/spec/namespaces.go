package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type nsResult struct {
	list                      []specs.LinuxNamespace
	hostNet, hostIPC, hostUTS bool
}

// namespaces lists the container's namespaces. Network and IPC follow the
// pod (kubelet cannot give a container its own); PID follows the
// container's request. UTS goes with the network: a host-network pod keeps
// the node's hostname. A new mount namespace always; a new cgroup
// namespace only on cgroup v2, where it hides the host's hierarchy (on v1
// runc bind-mounts the container's own cgroup directories anyway, and
// containerd does the same). The pod's user namespace when it has one.
func namespaces(in Input) (nsResult, error) {
	podOpts := in.Pod.GetLinux().GetSecurityContext().GetNamespaceOptions()
	ctrOpts := in.Container.GetLinux().GetSecurityContext().GetNamespaceOptions()
	opts := podOpts
	if opts == nil {
		opts = ctrOpts
	}
	pidOpts := ctrOpts
	if pidOpts == nil {
		pidOpts = podOpts
	}
	const nsField = scField + "namespace_options."

	// The pod's user namespace, if it has one (userns.go).
	userNS, err := userNamespace(in, ctrOpts)
	if err != nil {
		return nsResult{}, err
	}

	var r nsResult
	join := func(field string, t specs.LinuxNamespaceType, mode runtimeapi.NamespaceMode, podPath string) (host bool, err error) {
		switch mode {
		case runtimeapi.NamespaceMode_NODE:
			return true, nil
		case runtimeapi.NamespaceMode_POD:
			if podPath == "" {
				return false, fmt.Errorf("the pod's %s namespace path is not known", t)
			}
			r.list = append(r.list, specs.LinuxNamespace{Type: t, Path: podPath})
		case runtimeapi.NamespaceMode_CONTAINER:
			r.list = append(r.list, specs.LinuxNamespace{Type: t})
		default:
			return false, fieldErr(nsField+field, "mode %s is not supported for this namespace", mode)
		}
		return false, nil
	}
	if r.hostNet, err = join("network", specs.NetworkNamespace, opts.GetNetwork(), in.Namespaces.Net); err != nil {
		return nsResult{}, err
	}
	if r.hostIPC, err = join("ipc", specs.IPCNamespace, opts.GetIpc(), in.Namespaces.IPC); err != nil {
		return nsResult{}, err
	}
	utsMode := runtimeapi.NamespaceMode_POD
	if r.hostNet {
		utsMode = runtimeapi.NamespaceMode_NODE
	}
	if r.hostUTS, err = join("network", specs.UTSNamespace, utsMode, in.Namespaces.UTS); err != nil {
		return nsResult{}, err
	}

	switch pidOpts.GetPid() {
	case runtimeapi.NamespaceMode_TARGET:
		if pidOpts.GetTargetId() == "" {
			return nsResult{}, fieldErr(nsField+"target_id", "required when pid is TARGET")
		}
		if in.Namespaces.PID == "" {
			return nsResult{}, fmt.Errorf("the PID namespace of target container %s is not known", pidOpts.GetTargetId())
		}
		r.list = append(r.list, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: in.Namespaces.PID})
	default:
		if _, err := join("pid", specs.PIDNamespace, pidOpts.GetPid(), in.Namespaces.PID); err != nil {
			return nsResult{}, err
		}
	}

	r.list = append(r.list, specs.LinuxNamespace{Type: specs.MountNamespace})
	if in.CgroupV2 {
		r.list = append(r.list, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if userNS != nil {
		r.list = append(r.list, *userNS)
	}
	return r, nil
}
