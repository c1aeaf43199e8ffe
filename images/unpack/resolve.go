package unpack

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// cleanName turns a tar entry name (or hardlink target) into a clean path
// relative to the layer root, "." for the root itself. Absolute names and
// names whose ".." components climb above the root are refused; ".."
// components that stay inside are folded lexically, so nothing on disk is
// consulted for them.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty name")
	}
	if name[0] == '/' {
		return "", &EscapeError{Entry: name, Reason: "absolute path"}
	}
	if len(name) >= unix.PathMax {
		return "", fmt.Errorf("name is %d bytes long, longer than PATH_MAX: %w", len(name), unix.ENAMETOOLONG)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", &EscapeError{Entry: name, Reason: "path climbs above the layer root with \"..\""}
	}
	return c, nil
}

// splitName splits a cleaned name into its parent directory and last
// component; the parent of a top-level name is ".".
func splitName(name string) (parent, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}

// dirCache holds one resolved directory fd. Layers list entries in
// directory order, so most entries share the previous entry's parent.
type dirCache struct {
	path  string
	fd    int
	valid bool
}

// invalidate forgets which path the cached fd stands for, because a
// removal may have changed what that path resolves to. The fd stays open
// until the next lookup replaces it: a caller may still be using it as
// the parent of the entry whose name was just cleared, which is safe
// since clearing removes a child, never the directory itself.
func (c *dirCache) invalidate() { c.valid = false }

func (c *dirCache) set(p string, fd int) {
	c.close()
	c.path, c.fd, c.valid = p, fd, true
}

func (c *dirCache) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
	}
	c.fd, c.valid = -1, false
}

// dirFD returns an O_PATH fd for the directory dirPath (cleaned, relative
// to the root), resolved beneath the root. With create set, missing
// directories are made along the way, like an implicit "mkdir -p". The fd
// belongs to the cache: callers must not close it, and it is only good
// until the next dirFD call.
func (a *applier) dirFD(dirPath string, create bool) (int, error) {
	if dirPath == "." {
		return a.root, nil
	}
	if a.cache.valid && a.cache.path == dirPath {
		return a.cache.fd, nil
	}
	fd, err := openBeneath(a.root, dirPath, unix.O_PATH|unix.O_DIRECTORY)
	if err == unix.ENOENT && create {
		fd, err = a.mkdirAll(dirPath)
	}
	if err != nil {
		return -1, err
	}
	a.cache.set(dirPath, fd)
	return fd, nil
}

// mkdirAll creates the missing directories of dirPath, which the caller
// found missing. The deepest existing ancestor is looked for from the
// nearest one up, since usually only the last component is missing; it is
// resolved beneath the root (following symlinks that stay inside). Each
// new directory is made in the fd of the one before it and reopened
// without following, so it is exactly the directory just created.
func (a *applier) mkdirAll(dirPath string) (int, error) {
	cur, end := a.root, 0
	for i := len(dirPath); ; {
		i = strings.LastIndexByte(dirPath[:i], '/')
		if i < 0 {
			break
		}
		fd, err := openBeneath(a.root, dirPath[:i], unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			cur, end = fd, i+1
			break
		}
		if err != unix.ENOENT {
			return -1, err
		}
	}
	for _, comp := range strings.Split(dirPath[end:], "/") {
		next, err := a.mkdirIn(cur, comp)
		if cur != a.root {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// mkdirIn makes the implicit directory name in dirFD and opens it.
func (a *applier) mkdirIn(dirFD int, name string) (int, error) {
	if err := unix.Mkdirat(dirFD, name, 0o755); err != nil {
		if err == unix.EEXIST {
			// Something that is not a directory, typically a dangling
			// symlink, holds the name.
			err = unix.ENOTDIR
		}
		return -1, err
	}
	a.res.Inodes++
	// Implicit directories are 0755 whatever the daemon's umask.
	if err := unix.Fchmodat(dirFD, name, 0o755, 0); err != nil {
		return -1, err
	}
	return openAt(dirFD, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
}

// resolveError turns an escape reported by openat2 into an EscapeError for
// entry; other errors pass through.
func resolveError(entry, what string, err error) error {
	if isEscapeErrno(err) {
		return &EscapeError{Entry: entry, Reason: what + " resolves outside the layer directory (" + err.Error() + ")"}
	}
	return err
}
