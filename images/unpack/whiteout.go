package unpack

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// whiteoutPrefix marks "delete NAME from the layers below".
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix is reserved for markers; only opaqueMarker is
	// defined, others are ignored.
	whiteoutMetaPrefix = ".wh..wh."
	// opaqueMarker hides everything the layers below have in its directory.
	opaqueMarker = ".wh..wh..opq"

	opaqueXattr = "trusted.overlay.opaque"
)

// whiteout converts a whiteout entry to its overlayfs form. The ".wh."
// file itself is never written.
func (a *applier) whiteout(e *entry) error {
	if e.base == opaqueMarker {
		return a.opaque(e)
	}
	if strings.HasPrefix(e.base, whiteoutMetaPrefix) {
		return nil
	}
	victim := e.base[len(whiteoutPrefix):]
	switch victim {
	case "..":
		return &EscapeError{Entry: e.hdr.Name, Reason: "whiteout of a parent directory"}
	case "", ".":
		return errors.New("whiteout names no file")
	}
	pfd, err := a.dirFD(e.parent, true)
	if err != nil {
		return resolveError(e.hdr.Name, "parent directory", err)
	}
	err = unix.Mknodat(pfd, victim, unix.S_IFCHR, 0)
	if err == unix.EEXIST {
		// Whiteouts only delete from the layers below; what this layer
		// itself put under that name stays. A non-directory already
		// hides the lower one; a directory must also hide the lower
		// directory's contents, i.e. become opaque.
		var st unix.Stat_t
		if err := lstatAt(pfd, victim, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return setOpaque(pfd, victim)
		}
		return nil
	}
	if err != nil {
		return err
	}
	a.res.Inodes++
	return unix.Fchownat(pfd, victim, e.uid, e.gid, unix.AT_SYMLINK_NOFOLLOW)
}

// opaque marks the marker's directory opaque, creating it if this layer
// has not (yet) listed it.
func (a *applier) opaque(e *entry) error {
	fd, err := a.dirFD(e.parent, true)
	if err != nil {
		return resolveError(e.hdr.Name, "opaque directory", err)
	}
	return setxattrFD(fd, opaqueXattr, []byte{'y'})
}

func setOpaque(dirFD int, name string) error {
	return setxattrAt(dirFD, name, opaqueXattr, []byte{'y'})
}

// isWhiteoutDevice tells whether st is overlayfs's whiteout: a character
// device 0/0.
func isWhiteoutDevice(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}
