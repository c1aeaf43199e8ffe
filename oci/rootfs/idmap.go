package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// A container in a user namespace of its own sees the image's files, which
// belong to the node's root, as owned by nobody: it could neither change
// /etc nor run a setuid binary the way the image means. So each layer is
// given to overlayfs through an idmapped mount (MOUNT_ATTR_IDMAP with the
// pod's user namespace), which shows host ID 0 as the namespace's root, and
// the writable layer belongs to that root from the start. overlayfs takes
// idmapped lower layers since Linux 5.19 and keeps a private clone of each
// layer's mount, so the idmapped mounts are detached again as soon as the
// overlay stands: nothing extra stays mounted while the container lives.

// LowersDir is where MountIDMapped attaches the idmapped layers while it
// stacks the overlay: beside the root's mount point target.
func LowersDir(target string) string {
	return filepath.Join(filepath.Dir(target), "idmapped-layers")
}

// MountIDMapped mounts the root like Mount, for a container in the user
// namespace pinned at usernsPath whose root is host rootUID:rootGID. On
// error nothing stays mounted; the caller removes the directories.
func MountIDMapped(lowers []string, l Layout, mountLabel, usernsPath string, rootUID, rootGID int) error {
	if len(lowers) == 0 {
		return errors.New("rootfs: an image with no layers has no root")
	}
	for _, d := range []string{l.Upper, l.Work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, rootUID, rootGID); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return withUserNS(usernsPath, func(userns int) error {
		return overIDMappedLayers(lowers, l.Target, userns, func(mapped []string) error {
			return Mount(mapped, l, mountLabel)
		})
	})
}

// MountReadOnlyIDMapped is MountReadOnly for a container in the user
// namespace pinned at usernsPath: the image's files show as owned by that
// namespace's IDs. overlayfs itself cannot be idmapped, so one layer is an
// idmapped read-only bind and several are stacked over idmapped layers.
// On error nothing stays mounted.
func MountReadOnlyIDMapped(lowers []string, target, usernsPath string) error {
	if len(lowers) == 0 {
		return errors.New("rootfs: an image with no layers has nothing to mount")
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	return withUserNS(usernsPath, func(userns int) error {
		if len(lowers) == 1 {
			return idmapMountAttr(lowers[0], target, userns, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV)
		}
		return overIDMappedLayers(lowers, target, userns, func(mapped []string) error {
			return MountReadOnly(mapped, target)
		})
	})
}

// withUserNS runs fn with a descriptor of the user namespace pinned at
// path.
func withUserNS(path string, fn func(userns int) error) error {
	userns, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: open user namespace: %w", err)
	}
	defer unix.Close(userns)
	return fn(userns)
}

// overIDMappedLayers attaches each layer idmapped through userns in
// target's LowersDir, lets stack mount target over them, and detaches them
// again whatever happens: overlayfs holds its own clones. If they cannot
// be detached, target is unmounted too.
func overIDMappedLayers(lowers []string, target string, userns int, stack func(mapped []string) error) (err error) {
	dir := LowersDir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	defer func() {
		if uerr := UnmountLowers(target); uerr != nil {
			err = errors.Join(err, uerr)
			if mounted(target) {
				_ = Unmount(target)
			}
		}
	}()
	mapped := make([]string, len(lowers))
	for i, low := range lowers {
		mapped[i] = filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(mapped[i], 0o700); err != nil {
			return err
		}
		if err := idmapMount(low, mapped[i], userns); err != nil {
			return err
		}
	}
	return stack(mapped)
}

// idmapMount attaches a clone of the mount at src, idmapped through the
// user namespace userns, at dst.
func idmapMount(src, dst string, userns int) error {
	return idmapMountAttr(src, dst, userns, 0)
}

// idmapMountAttr is idmapMount with more mount attributes set (read-only,
// for example).
func idmapMountAttr(src, dst string, userns int, extra uint64) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("rootfs: clone %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | extra, Userns_fd: uint64(userns)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("rootfs: idmap %s: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("rootfs: attach idmapped %s at %s: %w", src, dst, err)
	}
	return nil
}

// UnmountLowers detaches and removes whatever MountIDMapped left in
// LowersDir(target): normally nothing, after a crash mid-mount the idmapped
// layers. Directories are removed one by one, never recursively: a layer
// still mounted there must not be emptied. A missing directory is fine.
func UnmountLowers(target string) error {
	dir := LowersDir(target)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := Unmount(p); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("rootfs: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("rootfs: %w", err))
		}
	}
	return errors.Join(errs...)
}

// mounted reports whether path is a mount point other than its parent's.
func mounted(path string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Lstat(filepath.Dir(path), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}
