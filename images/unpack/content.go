package unpack

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// maxSparseBytes bounds the total logical size of the sparse files of one
// layer. A sparse entry's holes cost no input bytes, and archive/tar
// produces them as zeros that have to be read (at some 20 GB/s), so
// without a bound a few hundred bytes of header could keep Apply busy for
// years. 64 GiB covers real sparse files (lastlog with large uids) at the
// price of a few seconds. A variable so tests can lower it.
var maxSparseBytes int64 = 64 << 30

// gnuSparseVersions are the GNU sparse PAX formats archive/tar expands.
var gnuSparseVersions = map[[2]string]bool{{"0", "0"}: true, {"0", "1"}: true, {"1", "0"}: true}

// isSparse tells whether hdr is a GNU sparse file. archive/tar expands the
// known formats (reads yield the holes as zeros); an unknown version would
// hand us its raw encoding as file content, so it is refused.
func isSparse(hdr *tar.Header) (bool, error) {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true, nil
	}
	major, minor := hdr.PAXRecords["GNU.sparse.major"], hdr.PAXRecords["GNU.sparse.minor"]
	if major != "" || minor != "" {
		if !gnuSparseVersions[[2]string{major, minor}] {
			return false, fmt.Errorf("unsupported GNU sparse format %s.%s", major, minor)
		}
		return true, nil
	}
	return hdr.PAXRecords["GNU.sparse.map"] != "", nil
}

// writeContent streams the entry's content into fd through the reused
// buffer and returns the file size written. Sparse files get their
// all-zero blocks left as holes.
func (a *applier) writeContent(fd int, r io.Reader, sparse bool) (int64, error) {
	var off int64
	for {
		n, err := r.Read(a.buf)
		if n > 0 {
			var werr error
			if sparse {
				werr = writeSparse(fd, a.buf[:n], off)
			} else {
				werr = writeAll(fd, a.buf[:n])
			}
			if werr != nil {
				return off, fmt.Errorf("writing: %w", werr)
			}
			off += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// archive/tar reports a body cut short as io.ErrUnexpectedEOF.
			return off, fmt.Errorf("reading content: %w", err)
		}
	}
	if sparse {
		// Trailing holes: give the file its full length.
		if err := unix.Ftruncate(fd, off); err != nil {
			return off, fmt.Errorf("truncating: %w", err)
		}
	}
	return off, nil
}

// holeSize is the granularity of holes left in sparse files, the usual
// filesystem block size.
const holeSize = 4096

var zeroBlock [holeSize]byte

// writeSparse writes p at off, skipping block-aligned runs of zeros.
func writeSparse(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n := min(holeSize-int(off%holeSize), len(p))
		if bytes.Equal(p[:n], zeroBlock[:n]) {
			p, off = p[n:], off+int64(n)
			continue
		}
		for n < len(p) {
			m := min(holeSize, len(p)-n)
			if bytes.Equal(p[n:n+m], zeroBlock[:m]) {
				break
			}
			n += m
		}
		if err := pwriteAll(fd, p[:n], off); err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}
