package server

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/oci/rootfs"
	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/pkg/netns"
	"github.com/berth-runtime/berth/server/store"
)

// A pod with userns_options mode POD (hostUsers: false) gets a user
// namespace of its own with the requested mappings, pinned as
// <pod dir>/ns/user beside its network, IPC and UTS namespaces, which that
// user namespace owns. Its containers join it (oci/spec/userns.go) and
// their roots are stacked from idmapped layers (oci/rootfs/idmap.go), so
// the image's files belong to the container's root.

// podUserNSPath is where the pod's user namespace is pinned, or "" when the
// pod has the node's users. The path follows from the pod's directory, so
// the record needs no field of its own and cleanup finds it by convention.
func podUserNSPath(p *store.Pod) string {
	if spec.PodUserNamespace(p.Config()) == nil {
		return ""
	}
	return usernsPin(p.Dir)
}

func usernsPin(podDir string) string { return filepath.Join(podDir, "ns", "user") }

// mappedRoot is the host UID and GID of the root of the pod's user
// namespace.
func mappedRoot(u *runtimeapi.UserNamespace) (uid, gid int, err error) {
	h, ok := spec.HostID(spec.IDMappings(u.GetUids()), 0)
	if !ok {
		return 0, 0, errors.New("container UID 0 is not mapped")
	}
	g, ok := spec.HostID(spec.IDMappings(u.GetGids()), 0)
	if !ok {
		return 0, 0, errors.New("container GID 0 is not mapped")
	}
	return int(h), int(g), nil
}

// newPodUserNamespaces makes the pod's user namespace and, owned by it,
// its namespaces of kinds, pinned under nsDir. The namespaces are made by
// starting the PID namespace holder (berth-pidns-holder) in all of them. When
// the pod shares one PID namespace (PID mode POD), that holder stays as
// its first process, so that the PID namespace too is owned by the user
// namespace (the kernel lets only its owner mount /proc for it); holder is
// then its PID. Otherwise the holder is ended at once and holder is 0.
func (s *Server) newPodUserNamespaces(pod *store.Pod, u *runtimeapi.UserNamespace, nsDir string, kinds []int, sharedPID bool) (paths map[int]string, holder int, err error) {
	toSys := func(m []*runtimeapi.IDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, len(m))
		for i, id := range spec.IDMappings(m) {
			out[i] = syscall.SysProcIDMap{ContainerID: int(id.ContainerID), HostID: int(id.HostID), Size: int(id.Size)}
		}
		return out
	}
	// The binary is run through an open descriptor: the holder runs as
	// the namespace's root (below) and may not be able to search the
	// directories on its path.
	bin, err := os.Open(s.pidHolderPath)
	if err != nil {
		return nil, 0, fmt.Errorf("pod user namespace: %w", err)
	}
	defer bin.Close()
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/3",
		Args:       []string{s.pidHolderPath, pod.ID},
		ExtraFiles: []*os.File{bin},
		SysProcAttr: &syscall.SysProcAttr{
			Setsid: true,
			// Root of the new namespace (host ID of container 0), not
			// host root: a container sharing its PID namespace could
			// otherwise reach a process holding the node's root IDs.
			Credential: &syscall.Credential{Uid: 0, Gid: 0},
		},
	}
	var extra uintptr
	if sharedPID {
		extra = syscall.CLONE_NEWPID
	}
	paths, err = netns.NewUserSet(nsDir, cmd, toSys(u.GetUids()), toSys(u.GetGids()), extra, kinds...)
	if err != nil {
		return nil, 0, fmt.Errorf("pod user namespace: %w", err)
	}
	if !sharedPID {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return paths, 0, nil
	}
	// Reap it when it ends, as startPIDHolder does.
	go cmd.Wait()
	return paths, cmd.Process.Pid, nil
}

// placePIDHolder accounts a holder made with the pod's user namespace to
// the pod's monitor cgroup, as startPIDHolder does for its own.
func (s *Server) placePIDHolder(pod *store.Pod) error {
	if err := cgroups.Place(s.cfg.Runtime.ShimCgroup+"/"+pod.ID, pod.PIDHolder); err != nil {
		return fmt.Errorf("pod PID namespace: %w", err)
	}
	return nil
}

// shmOwnerOptions gives the pod's /dev/shm tmpfs to the root of its user
// namespace, so that a container's root owns it as on a plain node.
func shmOwnerOptions(cfg *runtimeapi.PodSandboxConfig) (string, error) {
	u := spec.PodUserNamespace(cfg)
	if u == nil {
		return "", nil
	}
	uid, gid, err := mappedRoot(u)
	if err != nil {
		return "", err
	}
	return ",uid=" + strconv.Itoa(uid) + ",gid=" + strconv.Itoa(gid), nil
}

// mountContainerRoot mounts a container's root: plain for a pod with the
// node's users, from idmapped layers for a pod with its own user
// namespace. runc then prepares the root from inside that namespace, as
// the namespace's root, which has no rights on the host: the directories
// on the way to the root must be searchable by others (0711, as containerd
// keeps its state directories).
func (s *Server) mountContainerRoot(pod *store.Pod, lowers []string, l rootfs.Layout, mountLabel string) error {
	u := spec.PodUserNamespace(pod.Config())
	if u == nil {
		return rootfs.Mount(lowers, l, mountLabel)
	}
	uid, gid, err := mappedRoot(u)
	if err != nil {
		return err
	}
	if err := searchablePath(s.cfg.StateDir, filepath.Dir(l.Target)); err != nil {
		return err
	}
	return rootfs.MountIDMapped(lowers, l, mountLabel, podUserNSPath(pod), uid, gid)
}

// searchablePath creates dir (below stateDir) and lets others search it and
// every directory between it and stateDir. The directories above stateDir
// are the node's; one that others cannot search is reported, not changed.
func searchablePath(stateDir, dir string) error {
	rel, err := filepath.Rel(stateDir, dir)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("%s is not below the state directory %s", dir, stateDir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if m := fi.Mode().Perm(); m&0o001 == 0 {
			if err := os.Chmod(d, m|0o011); err != nil {
				return err
			}
		}
		if d == stateDir {
			break
		}
	}
	for d := filepath.Dir(stateDir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return status.Errorf(codes.FailedPrecondition, "pods with their own user namespace need the state directory's parents searchable by others: %s is %v", d, fi.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// podLevelSysctls are the pod's sysctls berthd writes into its namespaces
// at RunPodSandbox. In a pod with its own user namespace the IPC ones are
// left out: the kernel lets only the IPC namespace's root write them, and
// every container's spec carries all of the pod's sysctls, which runc
// writes from inside as that root.
func podLevelSysctls(cfg *runtimeapi.PodSandboxConfig) map[string]string {
	all := cfg.GetLinux().GetSysctls()
	if spec.PodUserNamespace(cfg) == nil {
		return all
	}
	out := make(map[string]string, len(all))
	for k, v := range all {
		if !netns.IPCSysctl(k) {
			out[k] = v
		}
	}
	return out
}
