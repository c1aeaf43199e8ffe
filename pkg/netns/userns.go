package netns

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// User is the user namespace kind in the map NewUserSet returns.
const User = unix.CLONE_NEWUSER

// NewUserSet creates a user namespace with the given ID mappings and, owned
// by it, one namespace of each kind (Net, IPC, UTS), and pins them all as
// dir/user, dir/net, dir/ipc and dir/uts, like NewSet.
//
// Owned matters: only a process with capabilities in the user namespace
// that owns a network namespace may configure it and mount sysfs for it,
// and likewise mqueue for an IPC namespace, so a container in the user
// namespace needs these namespaces to be its own. Host root still
// administers them from outside (CNI, sysctls, the hostname), since it
// holds every capability in all user namespaces.
//
// A process of many threads cannot unshare a user namespace, so the
// namespaces are made by starting holder (a command that stays alive until
// killed) with clone flags for all of them; extraFlags adds more (such as
// CLONE_NEWPID, for a holder that is to stay as the PID namespace's first
// process). Setgroups stays allowed in the new namespace: containers set
// their supplementary groups there. On success holder is running and is
// the caller's to end and wait for; the pins do not need it. On error
// nothing is left: no pin, no holder.
func NewUserSet(dir string, holder *exec.Cmd, uids, gids []syscall.SysProcIDMap, extraFlags uintptr, kinds ...int) (map[int]string, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, errors.New("netns: a user namespace needs uid and gid mappings")
	}
	paths := map[int]string{User: filepath.Join(dir, "user")}
	names := map[int]string{User: "user"}
	flags := uintptr(unix.CLONE_NEWUSER) | extraFlags
	for _, k := range kinds {
		name, err := kindName(k)
		if err != nil {
			return nil, err
		}
		if _, dup := paths[k]; dup {
			return nil, fmt.Errorf("netns: namespace kind %s given twice", name)
		}
		paths[k], names[k] = filepath.Join(dir, name), name
		flags |= uintptr(k)
	}

	var created []string
	undo := func() {
		for _, p := range created {
			_ = Remove(p)
		}
	}
	for _, p := range paths {
		if err := createMountTarget(p); err != nil {
			undo()
			return nil, err
		}
		created = append(created, p)
	}

	if holder.SysProcAttr == nil {
		holder.SysProcAttr = &syscall.SysProcAttr{}
	}
	a := holder.SysProcAttr
	a.Cloneflags |= flags
	a.UidMappings, a.GidMappings = uids, gids
	a.GidMappingsEnableSetgroups = true
	// Start returns once the child has exec'd, so its namespaces exist and
	// its mappings are written.
	if err := holder.Start(); err != nil {
		undo()
		return nil, fmt.Errorf("netns: start user namespace holder: %w", err)
	}
	pid := holder.Process.Pid
	for k, p := range paths {
		src := fmt.Sprintf("/proc/%d/ns/%s", pid, names[k])
		if err := unix.Mount(src, p, "none", unix.MS_BIND, ""); err != nil {
			_ = holder.Process.Kill()
			_ = holder.Wait()
			undo()
			return nil, fmt.Errorf("netns: bind-mount %s namespace on %s: %w", names[k], p, err)
		}
	}
	return paths, nil
}

// UserNamespaceOf reports whether the namespace pinned at path is owned by
// the user namespace pinned at userPath (both as by NewUserSet).
func UserNamespaceOf(path, userPath string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	// NS_GET_USERNS gives the owning user namespace.
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		return false, fmt.Errorf("netns: owner of %s: %w", path, err)
	}
	defer unix.Close(owner)
	var a, b unix.Stat_t
	if err := unix.Fstat(owner, &a); err != nil {
		return false, err
	}
	if err := unix.Stat(userPath, &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// IPCSysctl reports whether the sysctl name (dotted or slash form) belongs
// to the IPC namespace. In an IPC namespace owned by another user
// namespace the kernel lets only that namespace's root write those, not
// the node's root: they are written from inside, by the container runtime.
func IPCSysctl(name string) bool {
	rel, err := sysctlPath(name)
	if err != nil {
		return false
	}
	kind, err := sysctlNamespace(rel)
	return err == nil && kind == unix.CLONE_NEWIPC
}
