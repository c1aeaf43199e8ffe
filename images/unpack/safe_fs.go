package unpack

import (
	"errors"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Helpers over the *at system calls. Nothing here takes a path that is
// resolved from the process's working directory or from "/": every name is
// either resolved by openat2 beneath the layer root, or is a single
// component looked up in a directory fd without following a final symlink.

// beneath confines resolution to the tree under the starting fd. Magic
// links (/proc/self/fd/N and friends) could teleport anywhere, so they are
// refused as well.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// maxAgain bounds retries of openat2's EAGAIN, which the kernel returns
// when a rename or mount anywhere on the system raced with ".." resolution.
const maxAgain = 64

// openBeneath opens p relative to rootFD, failing with EXDEV or ELOOP if
// any step of the resolution would leave rootFD's tree.
func openBeneath(rootFD int, p string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: beneath}
	for again := 0; ; {
		fd, err := unix.Openat2(rootFD, p, &how)
		switch {
		case err == nil:
			return fd, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN && again < maxAgain:
			again++
			continue
		}
		return -1, err
	}
}

// isEscapeErrno tells whether err is how openat2 reports a resolution that
// left the tree (EXDEV) or went through a magic link or a symlink loop
// (ELOOP).
func isEscapeErrno(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP)
}

// openAt opens one component in dirFD, retrying on EINTR. Callers pass
// O_NOFOLLOW unless they mean to open the directory itself (".").
func openAt(dirFD int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirFD, name, flags|unix.O_CLOEXEC, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func lstatAt(dirFD int, name string, st *unix.Stat_t) error {
	return unix.Fstatat(dirFD, name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// futimens sets the times of the open file fd, with nanosecond precision
// (x/sys only offers a microsecond wrapper for open files).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// setxattrAt sets an xattr on name in dirFD without following name if it
// is a symlink, and without opening devices or fifos for I/O. lsetxattr
// has no directory-fd form before Linux 6.13 (setxattrat), so the object
// is pinned with an O_PATH fd and reached through its /proc magic link,
// which lands on that exact inode (the symlink itself, for a symlink).
func setxattrAt(dirFD int, name, key string, value []byte) error {
	fd, err := openAt(dirFD, name, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return setxattrFD(fd, key, value)
}

// setxattrFD sets an xattr on the object fd refers to, O_PATH fds included
// (fsetxattr refuses those).
func setxattrFD(fd int, key string, value []byte) error {
	return unix.Setxattr("/proc/self/fd/"+strconv.Itoa(fd), key, value, 0)
}

// writeAll writes p to fd, absorbing short writes.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// pwriteAll writes p to fd at off, absorbing short writes.
func pwriteAll(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pwrite(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
		off += int64(n)
	}
	return nil
}

// usage is what removed or written objects account for in Result.
type usage struct{ bytes, inodes int64 }

func (u *usage) add(v usage) {
	u.bytes += v.bytes
	u.inodes += v.inodes
}

// statUsage is the share of st that disappears when one name of it is
// unlinked: nothing while other hardlinks keep it alive.
func statUsage(st *unix.Stat_t) usage {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
		return usage{}
	}
	u := usage{inodes: 1}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		u.bytes = st.Size
	}
	return u
}

// removeAllAt removes name from dirFD, recursively if it is a directory.
// Symlinks are unlinked, never followed, so only the subtree beneath
// dirFD is affected. It reports whether name was a directory and how much
// was removed. A missing name is not an error.
func removeAllAt(dirFD int, name string) (wasDir bool, removed usage, err error) {
	var st unix.Stat_t
	if err := lstatAt(dirFD, name, &st); err != nil {
		if err == unix.ENOENT {
			return false, usage{}, nil
		}
		return false, usage{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dirFD, name, 0); err != nil && err != unix.ENOENT {
			return false, usage{}, err
		}
		return false, statUsage(&st), nil
	}
	fd, err := openAt(dirFD, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return true, usage{}, err
	}
	// Read every name before unlinking any, so deletion cannot disturb
	// the directory stream's position.
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	if err != nil {
		d.Close()
		return true, usage{}, err
	}
	for _, child := range names {
		_, u, err := removeAllAt(fd, child)
		removed.add(u)
		if err != nil {
			d.Close()
			return true, removed, err
		}
	}
	d.Close()
	if err := unix.Unlinkat(dirFD, name, unix.AT_REMOVEDIR); err != nil {
		return true, removed, err
	}
	removed.add(statUsage(&st))
	return true, removed, nil
}
