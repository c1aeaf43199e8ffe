package testregistry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the modification time of every tar entry and the creation time of
// every config and history entry. A fixed value keeps digests identical from
// one build to the next.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// gzipLevel is fixed so that the compressed bytes (and so the layer digests)
// do not depend on library defaults. klauspost/compress is used rather than
// compress/gzip because its output is pinned by go.mod instead of by the Go
// toolchain version.
const gzipLevel = gzip.DefaultCompression

// compression names how a layer's tar stream is stored in the registry.
type compression int

const (
	compGzip compression = iota
	compZstd
	compNone
)

// fileEntry describes one tar entry. Paths are relative to the rootfs and
// have no leading "/" or "./"; directories end without a slash (it is added
// when the header is written).
type fileEntry struct {
	name     string
	typ      byte // tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink
	mode     int64
	uid, gid int
	data     []byte
	link     string // a symlink's target; a hard link's target path in the layer
}

func dir(name string, mode int64) fileEntry {
	return fileEntry{name: name, typ: tar.TypeDir, mode: mode}
}

func file(name string, mode int64, data []byte) fileEntry {
	return fileEntry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}

func symlink(name, target string) fileEntry {
	return fileEntry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// buildTar writes entries as a USTAR stream. When sorted is true entries are
// ordered by path (a parent always sorts before its children because a prefix
// sorts before its extensions); hostile layers pass false to keep an order
// that matters to the attack.
func buildTar(entries []fileEntry, sorted bool) ([]byte, error) {
	if sorted {
		entries = append([]fileEntry(nil), entries...)
		sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  epoch,
			Format:   tar.FormatUSTAR,
		}
		switch e.typ {
		case tar.TypeDir:
			if !strings.HasSuffix(hdr.Name, "/") {
				hdr.Name += "/"
			}
		case tar.TypeSymlink, tar.TypeLink:
			hdr.Linkname = e.link
		case tar.TypeReg:
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar header %q: %w", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("tar data %q: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// memLayer is a v1.Layer held in memory in its compressed form. ggcr's
// static.NewLayer cannot be used for compressed content because it reports
// the compressed digest as the DiffID.
type memLayer struct {
	compressed []byte
	comp       compression
	mediaType  types.MediaType
	digest     v1.Hash
	diffID     v1.Hash
}

var _ v1.Layer = (*memLayer)(nil)

func (l *memLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)                { return int64(len(l.compressed)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) { return decompress(l.compressed, l.comp) }

func decompress(b []byte, c compression) (io.ReadCloser, error) {
	switch c {
	case compGzip:
		return gzip.NewReader(bytes.NewReader(b))
	case compZstd:
		d, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	default:
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

// newLayer compresses a tar stream and wraps it as a layer whose media type
// matches the compression and the manifest flavour (OCI or Docker).
func newLayer(tarBytes []byte, c compression, docker bool) (*memLayer, error) {
	diffID, _, err := v1.SHA256(bytes.NewReader(tarBytes))
	if err != nil {
		return nil, err
	}
	var out []byte
	var mt types.MediaType
	switch c {
	case compGzip:
		var buf bytes.Buffer
		// The zero gzip.Header means no file name and an MTIME of 0, so
		// nothing about the build machine or time leaks into the bytes.
		zw, err := gzip.NewWriterLevel(&buf, gzipLevel)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(tarBytes); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		out = buf.Bytes()
		mt = types.OCILayer
		if docker {
			mt = types.DockerLayer
		}
	case compZstd:
		// One goroutine and a fixed level: the encoder's output is then a
		// function of the input alone.
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		out = enc.EncodeAll(tarBytes, nil)
		if err := enc.Close(); err != nil {
			return nil, err
		}
		mt = types.OCILayerZStd
	case compNone:
		out = tarBytes
		mt = types.OCIUncompressedLayer
		if docker {
			mt = types.DockerUncompressedLayer
		}
	}
	digest, _, err := v1.SHA256(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	return &memLayer{compressed: out, comp: c, mediaType: mt, digest: digest, diffID: diffID}, nil
}

// withMediaType returns a copy of l that reports another media type over the
// same bytes, so OCI and Docker flavours of an image share blobs.
func (l *memLayer) withMediaType(mt types.MediaType) *memLayer {
	c := *l
	c.mediaType = mt
	return &c
}

// seededBytes returns n pseudo-random bytes from a ChaCha8 stream keyed by
// seed. ChaCha8's output is fixed by its specification, so the bytes (and the
// digests of the layers made from them) are the same with every Go release.
// The data is incompressible, which is the point: the big image has to move
// ~50 MB over the wire whatever the compression.
func seededBytes(seed string, n int) []byte {
	var key [32]byte
	copy(key[:], seed)
	r := rand.NewChaCha8(key)
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}
