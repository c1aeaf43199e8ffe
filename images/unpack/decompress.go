package unpack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte{'B', 'Z', 'h'}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// sniffLen is enough for the longest magic number we recognise.
const sniffLen = 6

// Decompress sniffs the stream's magic bytes and returns a reader of the
// uncompressed tar: gzip and zstd streams are decompressed, anything else
// is passed through as an uncompressed tar. Close releases the decoder; it
// does not close r.
//
// Reading the returned reader to EOF reads r to EOF for gzip and zstd, so
// a caller hashing r sees every byte. A corrupt stream (a bad checksum
// included) surfaces as a read error.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(sniffLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("unpack: reading layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("unpack: gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, magicZstd):
		// A single synchronous decoder: layers are unpacked in parallel
		// already, and per-stream goroutines would only add memory. The
		// default window limit (512 MiB) still bounds what a hostile
		// frame header can make the decoder allocate.
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
		)
		if err != nil {
			return nil, fmt.Errorf("unpack: zstd: %w", err)
		}
		return zstdReadCloser{zr}, nil
	case bytes.HasPrefix(head, magicBzip2), bytes.HasPrefix(head, magicXz):
		// Not layer media types; failing here is clearer than the tar
		// reader's "invalid header" on compressed bytes.
		return nil, errors.New("unpack: unsupported layer compression (bzip2 or xz)")
	}
	return io.NopCloser(br), nil
}

// zstdReadCloser adapts zstd.Decoder, whose Close returns nothing.
type zstdReadCloser struct{ d *zstd.Decoder }

func (z zstdReadCloser) Read(p []byte) (int, error) { return z.d.Read(p) }

func (z zstdReadCloser) Close() error {
	z.d.Close()
	return nil
}
