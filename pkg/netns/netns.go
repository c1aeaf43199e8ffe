// Package netns creates, enters and removes pinned Linux namespaces.
//
// A pod's network, IPC and UTS namespaces must outlive any process in them:
// the sandbox exists before its first container starts and after its last
// one exits. Such a namespace is kept alive by bind-mounting its nsfs file
// (/proc/<pid>/task/<tid>/ns/<kind>) onto a regular file, the way
// `ip netns add` does. Containers then join it by path.
//
// Namespaces are per thread for net, ipc and uts, so all of the work here
// happens on a locked OS thread. A thread that was moved into another
// namespace and could not be moved back is never handed back to the Go
// scheduler: its goroutine exits still locked, and the runtime destroys the
// thread instead of running unrelated goroutines in the wrong namespace.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"golang.org/x/sys/unix"
)

// Kinds accepted by New and NewSet.
const (
	Net = unix.CLONE_NEWNET
	IPC = unix.CLONE_NEWIPC
	UTS = unix.CLONE_NEWUTS
)

// kindName maps a CLONE_NEW* flag to its name under /proc/<pid>/ns.
func kindName(kind int) (string, error) {
	switch kind {
	case unix.CLONE_NEWNET:
		return "net", nil
	case unix.CLONE_NEWIPC:
		return "ipc", nil
	case unix.CLONE_NEWUTS:
		return "uts", nil
	}
	// Mount, PID, user, cgroup and time namespaces cannot be unshared by one
	// thread of a multi-threaded process, or need a process to live in.
	return "", fmt.Errorf("netns: unsupported namespace kind %#x", kind)
}

// New creates a namespace of the given kind (Net, IPC or UTS) and pins it by
// bind-mounting it onto path. The file is created if needed; its directory
// must exist. No process stays in the namespace.
func New(kind int, path string) error {
	_, err := pin([]int{kind}, map[int]string{kind: path})
	return err
}

// NewSet creates one namespace of each kind in a single unshare and pins
// them as dir/net, dir/ipc and dir/uts. It returns the path of each. On error
// nothing it made is left behind.
func NewSet(dir string, kinds ...int) (map[int]string, error) {
	if len(kinds) == 0 {
		return nil, errors.New("netns: no namespace kind given")
	}
	paths := make(map[int]string, len(kinds))
	for _, k := range kinds {
		name, err := kindName(k)
		if err != nil {
			return nil, err
		}
		if _, dup := paths[k]; dup {
			return nil, fmt.Errorf("netns: namespace kind %s given twice", name)
		}
		paths[k] = filepath.Join(dir, name)
	}
	return pin(kinds, paths)
}

// pin does the work of New and NewSet.
func pin(kinds []int, paths map[int]string) (map[int]string, error) {
	flags := 0
	for _, k := range kinds {
		if _, err := kindName(k); err != nil {
			return nil, err
		}
		flags |= k
	}
	var created []string
	undo := func() {
		for _, p := range created {
			_ = Remove(p)
		}
	}
	for _, k := range kinds {
		p := paths[k]
		if err := createMountTarget(p); err != nil {
			undo()
			return nil, err
		}
		created = append(created, p)
	}

	errc := make(chan error, 1)
	go func() {
		// Never unlocked: this thread has been in other namespaces, so it
		// is not handed back to the scheduler. A goroutine that returns
		// while locked makes the runtime terminate its thread (or park it
		// for good if it is the main thread, which cannot exit).
		runtime.LockOSThread()
		// The thread still moves back to its original namespaces after
		// pinning: if it is the main thread, it stays alive, and it would
		// otherwise keep the pinned namespaces alive after Remove and make
		// /proc/self/ns point at them.
		var orig []int
		defer func() {
			for _, fd := range orig {
				unix.Close(fd)
			}
		}()
		for _, k := range kinds {
			name, _ := kindName(k)
			fd, err := unix.Open("/proc/thread-self/ns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- fmt.Errorf("netns: open own %s namespace: %w", name, err)
				return
			}
			orig = append(orig, fd)
		}
		if err := unix.Unshare(flags); err != nil {
			errc <- fmt.Errorf("netns: unshare: %w", err)
			return
		}
		var err error
		tid := unix.Gettid()
		for _, k := range kinds {
			name, _ := kindName(k)
			src := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, name)
			if merr := unix.Mount(src, paths[k], "none", unix.MS_BIND, ""); merr != nil {
				err = fmt.Errorf("netns: bind-mount %s namespace on %s: %w", name, paths[k], merr)
				break
			}
		}
		for i, k := range kinds {
			if serr := unix.Setns(orig[i], k); serr != nil {
				name, _ := kindName(k)
				err = errors.Join(err, fmt.Errorf("netns: return to own %s namespace: %w", name, serr))
			}
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		undo()
		return nil, err
	}
	return paths, nil
}

// createMountTarget creates the empty file a namespace is mounted on. A file
// left over from an earlier run (a crash between create and mount) is reused,
// but a file that already holds a namespace is not: pinning over it would
// stack mounts and hide the namespace below.
func createMountTarget(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("netns: create %s: %w", path, err)
	}
	f.Close()
	if isNSFS(path) {
		return fmt.Errorf("netns: %s already holds a namespace: %w", path, os.ErrExist)
	}
	return nil
}

// isNSFS reports whether path is a mounted namespace file.
func isNSFS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// IsPinned reports whether path holds a pinned namespace. A path that does
// not exist, or is a plain file whose mount is gone, is not pinned.
func IsPinned(path string) bool {
	return path != "" && isNSFS(path)
}

// Remove unmounts the namespace pinned at path and removes the file. The
// namespace itself goes away once no process and no other mount holds it.
// A path that is already gone, or was never mounted, is not an error.
func Remove(path string) error {
	// A file may carry more than one mount if something pinned twice; keep
	// unmounting until the kernel says it is no mount point.
	for i := 0; i < 16; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		return fmt.Errorf("netns: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// Do runs fn on a locked OS thread inside the network namespace pinned at
// path, then moves the thread back. Goroutines that fn starts do not run in
// the namespace. If the thread cannot be moved back it is discarded.
func Do(path string, fn func() error) error {
	return inNamespaces(map[int]string{unix.CLONE_NEWNET: path}, fn)
}

// inNamespaces runs fn on a locked thread that has joined the namespaces in
// targets (kind -> pinned path), restoring the thread's namespaces after.
func inNamespaces(targets map[int]string, fn func() error) error {
	kinds := make([]int, 0, len(targets))
	for k := range targets {
		if _, err := kindName(k); err != nil {
			return err
		}
		kinds = append(kinds, k)
	}
	sort.Ints(kinds)

	// Open the targets first, on any thread: opening needs no namespace.
	fds := make([]int, len(kinds))
	for i := range fds {
		fds[i] = -1
	}
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for i, k := range kinds {
		fd, err := unix.Open(targets[k], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("netns: open %s: %w", targets[k], err)
		}
		fds[i] = fd
	}

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's own namespaces, to come back to. They must be
		// opened after locking, from this very thread.
		orig := make([]int, 0, len(kinds))
		closeOrig := func() {
			for _, fd := range orig {
				unix.Close(fd)
			}
		}
		for _, k := range kinds {
			name, _ := kindName(k)
			fd, err := unix.Open("/proc/thread-self/ns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				closeOrig()
				runtime.UnlockOSThread()
				errc <- fmt.Errorf("netns: open own %s namespace: %w", name, err)
				return
			}
			orig = append(orig, fd)
		}
		defer closeOrig()

		restore := func(n int) error {
			var errs []error
			for i := n - 1; i >= 0; i-- {
				if err := unix.Setns(orig[i], kinds[i]); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}

		for i, k := range kinds {
			if err := unix.Setns(fds[i], k); err != nil {
				name, _ := kindName(k)
				err = fmt.Errorf("netns: enter %s namespace %s: %w", name, targets[k], err)
				if rerr := restore(i); rerr != nil {
					// Leave the thread locked: it dies with this goroutine.
					errc <- errors.Join(err, fmt.Errorf("netns: restore namespaces: %w", rerr))
					return
				}
				runtime.UnlockOSThread()
				errc <- err
				return
			}
		}

		err := fn()

		if rerr := restore(len(kinds)); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("netns: restore namespaces: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// SetHostname sets the hostname inside the UTS namespace pinned at utsPath.
func SetHostname(utsPath, hostname string) error {
	if hostname == "" || len(hostname) > 64 {
		return fmt.Errorf("netns: hostname %q must have 1 to 64 bytes", hostname)
	}
	for i := 0; i < len(hostname); i++ {
		if hostname[i] == 0 {
			return fmt.Errorf("netns: hostname %q contains NUL", hostname)
		}
	}
	return inNamespaces(map[int]string{unix.CLONE_NEWUTS: utsPath}, func() error {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("netns: sethostname: %w", err)
		}
		return nil
	})
}

// SetLoopbackUp brings up "lo" inside the network namespace pinned at path.
// A new network namespace has its loopback down; pods expect 127.0.0.1 to
// work. This is one ioctl, where the CNI loopback plugin is a process start.
func SetLoopbackUp(path string) error {
	return Do(path, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("netns: socket: %w", err)
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("netns: get lo flags: %w", err)
		}
		flags := ifr.Uint16()
		if flags&unix.IFF_UP != 0 {
			return nil
		}
		ifr.SetUint16(flags | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("netns: bring lo up: %w", err)
		}
		return nil
	})
}
