package server

import (
	"github.com/opencontainers/selinux/go-selinux"
	"github.com/opencontainers/selinux/go-selinux/label"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// selinuxLabels returns the process and mount labels for a container from
// its (or else its pod's) SELinuxOptions. Where SELinux is off both are
// empty, and only labels made here are ever passed on: libcontainer and
// overlayfs fail on a label the kernel cannot use.
func selinuxLabels(ctr *runtimeapi.ContainerConfig, pod *runtimeapi.PodSandboxConfig) (process, mount string, err error) {
	opts := ctr.GetLinux().GetSecurityContext().GetSelinuxOptions()
	if opts == nil {
		opts = pod.GetLinux().GetSecurityContext().GetSelinuxOptions()
	}
	return label.InitLabels(selinuxOptionList(opts))
}

// selinuxOptionList turns CRI's SELinuxOption into InitLabels' "key:value"
// list; empty fields keep the defaults.
func selinuxOptionList(o *runtimeapi.SELinuxOption) []string {
	var out []string
	for _, kv := range [][2]string{{"user", o.GetUser()}, {"role", o.GetRole()}, {"type", o.GetType()}, {"level", o.GetLevel()}} {
		if kv[1] != "" {
			out = append(out, kv[0]+":"+kv[1])
		}
	}
	return out
}

// releaseSELinux frees a container's MCS level for reuse.
func releaseSELinux(processLabel string) {
	if processLabel != "" {
		selinux.ReleaseLabel(processLabel)
	}
}
