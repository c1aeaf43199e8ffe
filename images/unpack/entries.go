package unpack

import (
	"archive/tar"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// rootDir applies a "./" entry's metadata to the layer directory itself.
func (a *applier) rootDir(e *entry) error {
	if err := e.applyFD(e.hdr, a.root, false); err != nil {
		return err
	}
	a.dirTimes["."] = e.times
	return nil
}

// directory makes a directory, or keeps an existing one (with its
// children) and applies the entry's metadata to it. Its times wait for
// finishDirs.
func (a *applier) directory(e *entry, pfd int) error {
	err := unix.Mkdirat(pfd, e.base, 0o700)
	if err == unix.EEXIST {
		err = a.replaceWithDir(e, pfd)
	} else if err == nil {
		a.res.Inodes++
	}
	if err != nil {
		return err
	}
	if err := e.applyAt(e.hdr, pfd, e.base, unix.S_IFDIR, false); err != nil {
		return err
	}
	a.dirTimes[e.name] = e.times
	return nil
}

// replaceWithDir handles a directory entry whose name is taken. An
// existing directory is kept. Anything else is replaced; if it was a
// whiteout from this same layer, the layer both deletes the lower
// directory and creates a new one, which overlayfs spells as an opaque
// directory.
func (a *applier) replaceWithDir(e *entry, pfd int) error {
	var st unix.Stat_t
	if err := lstatAt(pfd, e.base, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil
	}
	wasWhiteout := isWhiteoutDevice(&st)
	if err := a.clear(pfd, e.base, e.name); err != nil {
		return err
	}
	if err := unix.Mkdirat(pfd, e.base, 0o700); err != nil {
		return err
	}
	a.res.Inodes++
	if wasWhiteout {
		return setOpaque(pfd, e.base)
	}
	return nil
}

func (a *applier) symlink(e *entry, pfd int) error {
	// The target is stored verbatim: it is only ever resolved inside the
	// container's root, never by us.
	err := a.create(pfd, e.base, e.name, func() error {
		return unix.Symlinkat(e.hdr.Linkname, pfd, e.base)
	})
	if err != nil {
		return err
	}
	a.res.Inodes++
	return e.applyAt(e.hdr, pfd, e.base, unix.S_IFLNK, true)
}

func (a *applier) node(e *entry, pfd int) error {
	var kind uint32
	var dev uint64
	switch e.hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		// mknod takes a 32-bit dev_t: 12 bits of major, 20 of minor.
		if e.hdr.Devmajor < 0 || e.hdr.Devmajor > 0xfff || e.hdr.Devminor < 0 || e.hdr.Devminor > 0xfffff {
			return fmt.Errorf("device number %d:%d out of range", e.hdr.Devmajor, e.hdr.Devminor)
		}
		dev = unix.Mkdev(uint32(e.hdr.Devmajor), uint32(e.hdr.Devminor))
		kind = unix.S_IFCHR
		if e.hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
	default:
		kind = unix.S_IFIFO
	}
	err := a.create(pfd, e.base, e.name, func() error {
		return unix.Mknodat(pfd, e.base, kind|0o600, int(dev))
	})
	if err != nil {
		return err
	}
	a.res.Inodes++
	return e.applyAt(e.hdr, pfd, e.base, kind, true)
}

// hardlink links e to an entry already extracted into the layer. The
// target is resolved beneath the root like any entry name and its final
// component is not followed, so a symlink target gets a second name
// rather than leading anywhere.
func (a *applier) hardlink(e *entry, pfd int) error {
	target, err := cleanName(e.hdr.Linkname)
	if err != nil {
		if _, ok := err.(*EscapeError); ok {
			return &EscapeError{Entry: e.hdr.Name, Reason: fmt.Sprintf("hardlink target %q is outside the layer", e.hdr.Linkname)}
		}
		return fmt.Errorf("hardlink target %q: %w", e.hdr.Linkname, err)
	}
	if target == "." {
		return fmt.Errorf("hardlink to the layer root")
	}
	if target == e.name {
		return nil // a link to itself: already there
	}
	tparent, tbase := splitName(target)
	tfd := pfd
	if tparent != e.parent {
		// Opened outside the cache so pfd stays valid.
		tfd, err = openBeneath(a.root, tparent, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			if isEscapeErrno(err) {
				return &EscapeError{Entry: e.hdr.Name, Reason: fmt.Sprintf("hardlink target %q resolves outside the layer (%v)", e.hdr.Linkname, err)}
			}
			return fmt.Errorf("hardlink target %q: %w", e.hdr.Linkname, err)
		}
		defer unix.Close(tfd)
	}
	err = a.create(pfd, e.base, e.name, func() error {
		return unix.Linkat(tfd, tbase, pfd, e.base, 0)
	})
	if err != nil {
		return fmt.Errorf("hardlink to %q: %w", e.hdr.Linkname, err)
	}
	// Like other runtimes, apply the link header's metadata to the shared
	// inode; writers repeat the target's, so this is normally a no-op.
	var st unix.Stat_t
	if err := lstatAt(pfd, e.base, &st); err != nil {
		return err
	}
	return e.applyAt(e.hdr, pfd, e.base, st.Mode&unix.S_IFMT, true)
}

func (a *applier) regular(e *entry, pfd int, content io.Reader) error {
	sparse, err := isSparse(e.hdr)
	if err != nil {
		return err
	}
	if sparse {
		if a.sparseLeft -= e.hdr.Size; a.sparseLeft < 0 {
			return fmt.Errorf("sparse files of the layer exceed %d bytes", maxSparseBytes)
		}
	}
	var fd int
	err = a.create(pfd, e.base, e.name, func() (err error) {
		fd, err = openAt(pfd, e.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	a.res.Inodes++
	n, err := a.writeContent(fd, content, sparse)
	a.res.Bytes += n
	if err == nil {
		err = e.applyFD(e.hdr, fd, true)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("closing: %w", cerr)
	}
	return err
}
