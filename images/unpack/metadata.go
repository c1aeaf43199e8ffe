package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// attrs is the metadata an entry asks for, validated.
type attrs struct {
	uid, gid int
	mode     uint32 // permission bits plus setuid, setgid and sticky
	times    [2]unix.Timespec
}

// maxID is the largest usable uid/gid: (uid_t)-1 means "leave unchanged"
// to chown, so it cannot be stored.
const maxID = math.MaxUint32 - 1

func headerAttrs(hdr *tar.Header) (attrs, error) {
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return attrs{}, fmt.Errorf("uid/gid %d/%d out of range", hdr.Uid, hdr.Gid)
	}
	a := attrs{
		uid:  hdr.Uid,
		gid:  hdr.Gid,
		mode: uint32(hdr.Mode) & 0o7777,
	}
	a.times[1] = timespec(hdr.ModTime)
	if hdr.AccessTime.IsZero() {
		a.times[0] = a.times[1]
	} else {
		a.times[0] = timespec(hdr.AccessTime)
	}
	return a, nil
}

// timespec converts without going through nanoseconds since the epoch,
// which overflows outside 1678..2262; the kernel clamps to what the
// filesystem can store.
func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

const paxXattrPrefix = "SCHILY.xattr."

// reservedXattr reports xattrs an image may not set. overlayfs reads its
// own trusted.overlay.* (or user.overlay.* with userxattr) attributes from
// lower directories: redirects, metacopy, opacity. Only the layer's
// whiteout entries may express those; an image carrying them verbatim
// could change how the layers below it are read.
func reservedXattr(key string) bool {
	return strings.HasPrefix(key, "trusted.overlay.") || strings.HasPrefix(key, "user.overlay.")
}

// setXattrs applies the entry's SCHILY.xattr.* records with set. Missing
// filesystem support is not an error (the image still runs, as with other
// runtimes), nor is the kernel's refusal of user.* xattrs on anything but
// regular files and directories.
func setXattrs(hdr *tar.Header, regularOrDir bool, set func(key string, value []byte) error) error {
	for k, v := range hdr.PAXRecords {
		key, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || reservedXattr(key) {
			continue
		}
		err := set(key, []byte(v))
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOTSUP):
		case errors.Is(err, unix.EPERM) && !regularOrDir && strings.HasPrefix(key, "user."):
		default:
			return fmt.Errorf("setting xattr %q: %w", key, err)
		}
	}
	return nil
}

// applyAt sets owner, mode (unless a symlink: Linux symlinks have no mode
// of their own), xattrs and, unless deferred, times on name in dirFD. The
// mode is set after the owner because chown clears setuid and setgid;
// xattrs after the owner because chown clears security.capability.
func (at *attrs) applyAt(hdr *tar.Header, dirFD int, name string, kind uint32, setTimes bool) error {
	if err := unix.Fchownat(dirFD, name, at.uid, at.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if kind != unix.S_IFLNK {
		// fchmodat follows a final symlink, but name was just created
		// (or checked) by us as a non-symlink in this very fd.
		if err := unix.Fchmodat(dirFD, name, at.mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if len(hdr.PAXRecords) > 0 {
		err := setXattrs(hdr, kind == unix.S_IFREG || kind == unix.S_IFDIR, func(key string, value []byte) error {
			return setxattrAt(dirFD, name, key, value)
		})
		if err != nil {
			return err
		}
	}
	if setTimes {
		if err := unix.UtimesNanoAt(dirFD, name, at.times[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting times: %w", err)
		}
	}
	return nil
}

// applyFD is applyAt for an open regular file or directory.
func (at *attrs) applyFD(hdr *tar.Header, fd int, setTimes bool) error {
	if err := unix.Fchown(fd, at.uid, at.gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, at.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if len(hdr.PAXRecords) > 0 {
		err := setXattrs(hdr, true, func(key string, value []byte) error {
			return unix.Fsetxattr(fd, key, value, 0)
		})
		if err != nil {
			return err
		}
	}
	if setTimes {
		if err := futimens(fd, &at.times); err != nil {
			return fmt.Errorf("setting times: %w", err)
		}
	}
	return nil
}
