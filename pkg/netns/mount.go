package netns

import (
	"fmt"
	"github.com/moby/sys/mountinfo"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// EnsureSharedMount makes dir a mount point with shared propagation, creating
// it if needed. Namespace files pinned below dir are then visible in mount
// namespaces created later (and in the host's, when the daemon itself runs in
// a private mount namespace), instead of being copied as private mounts that
// keep the namespaces alive after Remove. Calling it again does nothing.
func EnsureSharedMount(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	found, shared, err := mountPropagation(real)
	if err != nil {
		return err
	}
	if !found {
		if err := unix.Mount(real, real, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("netns: bind-mount %s onto itself: %w", real, err)
		}
		if _, shared, err = mountPropagation(real); err != nil {
			return err
		}
	}
	if !shared {
		if err := unix.Mount("", real, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("netns: make %s shared: %w", real, err)
		}
	}
	return nil
}

// mountPropagation looks dir up in /proc/self/mountinfo and reports whether
// it is a mount point and whether the topmost mount there is shared.
func mountPropagation(dir string) (found, shared bool, err error) {
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil {
		return false, false, fmt.Errorf("netns: read mountinfo: %w", err)
	}
	// Later entries are mounted on top of earlier ones; the last wins.
	for _, m := range mounts {
		found, shared = true, false
		for _, opt := range strings.Fields(m.Optional) {
			if strings.HasPrefix(opt, "shared:") {
				shared = true
			}
		}
	}
	return found, shared, nil
}
