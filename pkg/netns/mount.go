package netns

import (
	"bufio"
	"fmt"
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
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, false, fmt.Errorf("netns: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || unescapeMountinfo(fields[4]) != dir {
			continue
		}
		// Later lines are mounted on top of earlier ones; the last wins.
		found, shared = true, false
		for _, opt := range fields[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				shared = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return false, false, fmt.Errorf("netns: read mountinfo: %w", err)
	}
	return found, shared, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space and the like)
// the kernel uses in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
