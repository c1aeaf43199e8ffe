// Package rootfs mounts a container's root filesystem: the image's layers
// stacked read-only by overlayfs under a writable layer of the container's
// own.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Layout is where one container's root lives. Upper and Work hold its
// writable layer (persistent, under berth's root); Target is the mount
// point (runtime state).
type Layout struct {
	Upper  string
	Work   string
	Target string
}

// NewLayout places a container's directories: writable layer under dataDir,
// mount point under stateDir.
func NewLayout(dataDir, stateDir string) Layout {
	return Layout{
		Upper:  filepath.Join(dataDir, "upper"),
		Work:   filepath.Join(dataDir, "work"),
		Target: filepath.Join(stateDir, "rootfs"),
	}
}

// Options builds the overlay mount data. Lower dirs are given bottom first,
// as image layers are listed; overlayfs wants the top one first.
func Options(lowers []string, l Layout, mountLabel string) (string, error) {
	if len(lowers) == 0 {
		return "", errors.New("rootfs: an image with no layers has no root")
	}
	rev := make([]string, len(lowers))
	for i, d := range lowers {
		if strings.ContainsAny(d, ",:") {
			return "", fmt.Errorf("rootfs: layer path %q has a character overlayfs cannot take", d)
		}
		rev[len(lowers)-1-i] = d
	}
	opts := "lowerdir=" + strings.Join(rev, ":") + ",upperdir=" + l.Upper + ",workdir=" + l.Work
	// index=off keeps hard links between layers from tying the upper dir to
	// one set of lowers; xino is left to the kernel default.
	opts += ",index=off"
	if mountLabel != "" {
		opts += ",context=\"" + mountLabel + "\""
	}
	return opts, nil
}

// Mount creates the directories and mounts the overlay at l.Target. On
// error nothing stays mounted; the caller removes the directories.
func Mount(lowers []string, l Layout, mountLabel string) error {
	opts, err := Options(lowers, l, mountLabel)
	if err != nil {
		return err
	}
	for _, d := range []string{l.Upper, l.Work, l.Target} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// The upper dir's root becomes the container's "/"; 0755 as images expect.
	if err := os.Chmod(l.Upper, 0o755); err != nil {
		return err
	}
	if len(opts) >= unix.Getpagesize()-1 {
		return fmt.Errorf("rootfs: %d layers make mount options longer than a page", len(lowers))
	}
	if err := unix.Mount("overlay", l.Target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("rootfs: mount overlay at %s: %w", l.Target, err)
	}
	return nil
}

// Unmount detaches the root; a root that is not mounted is not an error,
// so removal can be repeated.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		switch {
		case err == nil:
			continue // stacked mounts: take them all
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("rootfs: unmount %s: %w", target, err)
		}
	}
}

// MountReadOnly mounts an image's layers read-only at target (an image
// volume): one layer is bound, several are stacked by overlayfs with no
// upper dir, which overlayfs mounts read-only. Lower dirs are given bottom
// first. On error nothing stays mounted.
func MountReadOnly(lowers []string, target string) error {
	if len(lowers) == 0 {
		return errors.New("rootfs: an image with no layers has nothing to mount")
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	if len(lowers) == 1 {
		if err := unix.Mount(lowers[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("rootfs: bind %s at %s: %w", lowers[0], target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
			Unmount(target)
			return fmt.Errorf("rootfs: make %s read-only: %w", target, err)
		}
		return nil
	}
	rev := make([]string, len(lowers))
	for i, d := range lowers {
		if strings.ContainsAny(d, ",:") {
			return fmt.Errorf("rootfs: layer path %q has a character overlayfs cannot take", d)
		}
		rev[len(lowers)-1-i] = d
	}
	opts := "lowerdir=" + strings.Join(rev, ":")
	if len(opts) >= unix.Getpagesize()-1 {
		return fmt.Errorf("rootfs: %d layers make mount options longer than a page", len(lowers))
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("rootfs: mount overlay at %s: %w", target, err)
	}
	return nil
}
