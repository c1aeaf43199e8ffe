package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Result is the disk usage of what Apply wrote: the apparent size of
// regular files and one inode per filesystem object created (directories
// made implicitly and whiteout devices included, hardlinks excluded since
// they share their target's inode). Objects that a later entry of the
// same layer replaced are subtracted again.
type Result struct {
	Bytes  int64
	Inodes int64
}

// copyBufSize is the size of the reused file-content buffer: large enough
// that a decompressor fills it in few calls and each write syscall moves
// a good amount of data.
const copyBufSize = 128 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Apply extracts the uncompressed layer tar read from r into dir, which
// must exist and be empty. Whiteouts become their overlayfs form (see the
// package documentation). On success r has been read to EOF, including
// any padding after the tar end-of-archive marker, so a caller hashing r
// has seen every byte.
//
// An entry that tries to reach outside dir makes Apply fail with an
// error wrapping *EscapeError. On any error Apply returns at once and
// leaves what it already wrote in dir: the caller is expected to extract
// into a fresh temporary directory and remove it on failure. Nothing
// outside dir is ever created, modified or linked to.
//
// A tar that ends early is an error, including one cut at an entry
// boundary (no end-of-archive marker). Entries of unknown types are
// skipped.
func Apply(dir string, r io.Reader) (Result, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Result{}, fmt.Errorf("unpack: opening %s: %w", dir, err)
	}
	bufp := bufPool.Get().(*[]byte)
	a := &applier{
		root:       root,
		buf:        *bufp,
		cache:      dirCache{fd: -1},
		dirTimes:   make(map[string][2]unix.Timespec),
		sparseLeft: maxSparseBytes,
	}
	defer func() {
		a.cache.close()
		unix.Close(root)
		bufPool.Put(bufp)
	}()
	if err := a.run(r); err != nil {
		return a.res, err
	}
	return a.res, nil
}

type applier struct {
	root  int // the layer directory, O_RDONLY so f* calls work on it too
	buf   []byte
	cache dirCache
	res   Result
	// dirTimes holds directory times until every entry is written,
	// since creating children changes a directory's mtime.
	dirTimes map[string][2]unix.Timespec
	// sparseLeft is what remains of maxSparseBytes.
	sparseLeft int64
}

// entry is a tar header with its name checked and split.
type entry struct {
	hdr    *tar.Header
	name   string // clean, relative to the root, "." for the root
	parent string
	base   string
	attrs
}

func (a *applier) run(r io.Reader) error {
	tail := &tailReader{r: r}
	tr := tar.NewReader(tail)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// With GODEBUG=tarinsecurepath=0 the reader flags names such as
		// "../x"; they get our own, stricter, checks instead.
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return fmt.Errorf("unpack: reading layer: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return entryError(hdr.Name, err)
		}
	}
	if !tail.endsWithZeroBlock() {
		return fmt.Errorf("unpack: layer ends without an end-of-archive marker: %w", io.ErrUnexpectedEOF)
	}
	// Drain what follows the marker (tar pads to a record size) so the
	// caller's digest covers the whole blob and compressed streams get
	// their trailing checksum verified.
	for {
		_, err := r.Read(a.buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("unpack: reading layer: %w", err)
		}
	}
	return a.finishDirs()
}

func (a *applier) entry(hdr *tar.Header, content io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink,
		tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		// Global PAX headers, volume labels and types we do not know
		// carry nothing to put on disk.
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	e := &entry{hdr: hdr, name: name}
	e.parent, e.base = splitName(name)
	if e.attrs, err = headerAttrs(hdr); err != nil {
		return err
	}
	if strings.HasPrefix(e.base, whiteoutPrefix) {
		return a.whiteout(e)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the layer root can only be a directory")
		}
		return a.rootDir(e)
	}
	pfd, err := a.dirFD(e.parent, true)
	if err != nil {
		return resolveError(hdr.Name, "parent directory", err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.directory(e, pfd)
	case tar.TypeSymlink:
		return a.symlink(e, pfd)
	case tar.TypeLink:
		return a.hardlink(e, pfd)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.node(e, pfd)
	}
	return a.regular(e, pfd, content)
}

// create runs mk, which makes e's object named base in pfd and fails with
// EEXIST if the name is taken. Then whatever holds the name is removed,
// recursively for a directory (beneath pfd only, symlinks unlinked and
// never followed), and mk is tried once more. This is how a later entry
// replaces an earlier one.
func (a *applier) create(pfd int, base, fullName string, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	if err := a.clear(pfd, base, fullName); err != nil {
		return err
	}
	return mk()
}

// clear removes base from pfd, fullName being its name in the layer.
func (a *applier) clear(pfd int, base, fullName string) error {
	wasDir, removed, err := removeAllAt(pfd, base)
	a.res.Bytes -= removed.bytes
	a.res.Inodes -= removed.inodes
	a.cache.invalidate()
	if wasDir {
		// The recorded times belonged to the removed directory. Those of
		// its descendants stay recorded but finishDirs skips names that
		// are no longer directories; forgetting them here would cost a
		// scan of every recorded directory per removal.
		delete(a.dirTimes, fullName)
	}
	if err != nil {
		return fmt.Errorf("replacing existing %q: %w", fullName, err)
	}
	return nil
}

// finishDirs sets directory times once all entries are written. Each
// directory is looked up again beneath the root and must still be a
// directory: a later entry may have replaced it, in which case there is
// nothing left to date.
func (a *applier) finishDirs() error {
	paths := make([]string, 0, len(a.dirTimes))
	for p := range a.dirTimes {
		paths = append(paths, p)
	}
	slices.Sort(paths) // siblings become adjacent and share a cached parent
	var st unix.Stat_t
	for _, p := range paths {
		ts := a.dirTimes[p]
		if p == "." {
			if err := futimens(a.root, &ts); err != nil {
				return fmt.Errorf("unpack: setting times of the layer root: %w", err)
			}
			continue
		}
		parent, base := splitName(p)
		pfd, err := a.dirFD(parent, false)
		if err != nil {
			continue
		}
		if err := lstatAt(pfd, base, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("unpack: setting times of %q: %w", p, err)
		}
	}
	return nil
}
