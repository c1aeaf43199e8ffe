package spec

import (
	"fmt"
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod in a user namespace of its own (Kubernetes' hostUsers: false)
// asks for it with userns_options.mode POD and one UID and one GID
// mapping. Its network, IPC and UTS namespaces are then owned by that user
// namespace, and every container joins it. NODE, or no userns_options at
// all, keeps the node's users. CONTAINER and TARGET mean nothing for a user
// namespace in CRI and are refused, as containerd and CRI-O do.

// PodUserNamespace returns the pod's userns_options when it asks for a
// user namespace of its own, and nil when it keeps the node's.
func PodUserNamespace(pod *runtimeapi.PodSandboxConfig) *runtimeapi.UserNamespace {
	u := pod.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if u == nil || u.GetMode() != runtimeapi.NamespaceMode_POD {
		return nil
	}
	return u
}

// ValidatePodUserNamespace checks the namespace options of a pod config
// for its user namespace. field names the options, as in
// "config.linux.security_context.namespace_options"; errors name the field
// below it that is at fault.
func ValidatePodUserNamespace(field string, opts *runtimeapi.NamespaceOption) error {
	u := opts.GetUsernsOptions()
	if u == nil {
		return nil
	}
	uf := field + ".userns_options"
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids()) > 0 || len(u.GetGids()) > 0 {
			return fieldErr(uf+".uids", "mappings are only for mode POD, not NODE")
		}
		return nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return fieldErr(uf+".mode", "%s is not supported: a pod has the node's user namespace (NODE) or its own (POD)", u.GetMode())
	}
	if err := validMapping(uf+".uids", u.GetUids()); err != nil {
		return err
	}
	if err := validMapping(uf+".gids", u.GetGids()); err != nil {
		return err
	}
	// The kernel lets only the owner of a namespace's user namespace mount
	// /proc, /sys and mqueue in it: a pod in its own user namespace cannot
	// share the node's network, IPC or PID namespace (kubelet refuses
	// hostUsers: false with any of them, too).
	for _, ns := range []struct {
		name string
		mode runtimeapi.NamespaceMode
	}{{"network", opts.GetNetwork()}, {"ipc", opts.GetIpc()}, {"pid", opts.GetPid()}} {
		if ns.mode == runtimeapi.NamespaceMode_NODE {
			return fieldErr(field+"."+ns.name, "NODE cannot be combined with userns_options.mode POD")
		}
	}
	return nil
}

// validMapping accepts exactly one mapping that maps container ID 0 and
// stays within 32 bits on both sides. One mapping is what kubelet sends
// and what the idmapped mounts of the pod's root are made from.
func validMapping(field string, m []*runtimeapi.IDMapping) error {
	if len(m) != 1 {
		return fieldErr(field, "mode POD needs exactly one mapping, got %d", len(m))
	}
	id := m[0]
	f := indexed(field, 0)
	switch {
	case id.GetLength() == 0:
		return fieldErr(f+".length", "must be greater than 0")
	case id.GetContainerId() != 0:
		return fieldErr(f+".container_id", "is %d: the mapping must map container ID 0 (the container's root)", id.GetContainerId())
	case uint64(id.GetContainerId())+uint64(id.GetLength()) > math.MaxUint32+1:
		return fieldErr(f+".length", "container IDs %d+%d overflow 32 bits", id.GetContainerId(), id.GetLength())
	case uint64(id.GetHostId())+uint64(id.GetLength()) > math.MaxUint32+1:
		return fieldErr(f+".length", "host IDs %d+%d overflow 32 bits", id.GetHostId(), id.GetLength())
	}
	return nil
}

// IDMappings converts validated CRI mappings for the OCI spec and the
// kernel's uid_map/gid_map.
func IDMappings(m []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, len(m))
	for i, id := range m {
		out[i] = specs.LinuxIDMapping{ContainerID: id.GetContainerId(), HostID: id.GetHostId(), Size: id.GetLength()}
	}
	return out
}

// HostID maps a container ID to the host through mappings; ok is false
// when no mapping covers it.
func HostID(m []specs.LinuxIDMapping, id uint32) (host uint32, ok bool) {
	for _, r := range m {
		if id >= r.ContainerID && uint64(id) < uint64(r.ContainerID)+uint64(r.Size) {
			return r.HostID + (id - r.ContainerID), true
		}
	}
	return 0, false
}

// userNamespace is the container's entry for the pod's user namespace, or
// nil when the pod has none. A container may repeat the pod's
// userns_options (kubelet does) but not differ from them: all containers
// of a pod share its user namespace.
func userNamespace(in Input, ctrOpts *runtimeapi.NamespaceOption) (*specs.LinuxNamespace, error) {
	podUserns := PodUserNamespace(in.Pod)
	if c := ctrOpts.GetUsernsOptions(); c != nil {
		const f = scField + "namespace_options.userns_options"
		podMode := runtimeapi.NamespaceMode_NODE
		if podUserns != nil {
			podMode = runtimeapi.NamespaceMode_POD
		}
		if c.GetMode() != podMode {
			return nil, fieldErr(f+".mode", "%s differs from the pod's %s: containers share the pod's user namespace", c.GetMode(), podMode)
		}
		if podUserns != nil && (!sameMappings(c.GetUids(), podUserns.GetUids()) || !sameMappings(c.GetGids(), podUserns.GetGids())) {
			return nil, fieldErr(f+".uids", "the mappings differ from the pod's")
		}
	}
	if podUserns == nil {
		return nil, nil
	}
	if in.Namespaces.User == "" {
		return nil, fmt.Errorf("the pod's user namespace path is not known")
	}
	// The path alone: runc reads the mappings from the namespace it joins
	// (libcontainer/specconv), and a spec that also carries uidMappings
	// only earns a warning for each container start.
	return &specs.LinuxNamespace{Type: specs.UserNamespace, Path: in.Namespaces.User}, nil
}

// sameMappings treats absent mappings as "the pod's".
func sameMappings(a, b []*runtimeapi.IDMapping) bool {
	if len(a) == 0 {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// checkMapped refuses a container user or group the pod's user namespace
// does not map: the kernel would refuse it at start with a far less
// helpful error.
func checkMapped(u User, pod *runtimeapi.PodSandboxConfig) error {
	podUserns := PodUserNamespace(pod)
	if podUserns == nil {
		return nil
	}
	uids, gids := IDMappings(podUserns.GetUids()), IDMappings(podUserns.GetGids())
	if _, ok := HostID(uids, u.UID); !ok {
		return fieldErr(scField+"run_as_user", "user %d is not mapped in the pod's user namespace", u.UID)
	}
	for _, g := range append([]uint32{u.GID}, u.AdditionalGids...) {
		if _, ok := HostID(gids, g); !ok {
			return fieldErr(scField+"run_as_group", "group %d is not mapped in the pod's user namespace", g)
		}
	}
	return nil
}
