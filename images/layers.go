package images

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-runtime/berth/images/unpack"
)

// Each layer is unpacked once into layers/<chain-id hex>/fs, alone, with OCI
// whiteouts already in overlayfs form, so a container root is an overlay
// of these fs directories. A layer is unpacked into tmp/ and renamed into
// place only after both its compressed digest and its diff ID matched, so a
// directory under layers/ is always a whole, verified layer.

// layerMeta is written beside fs/ so usage is known without walking it.
type layerMeta struct {
	DiffID string `json:"diffID"`
	Bytes  int64  `json:"bytes"`
	Inodes int64  `json:"inodes"`
}

func (s *Service) layerDir(chainID string) string {
	return filepath.Join(s.dir, "layers", strings.TrimPrefix(chainID, "sha256:"))
}

// LayerPath is the directory an overlay mount stacks for this layer.
func (s *Service) LayerPath(chainID string) string {
	return filepath.Join(s.layerDir(chainID), "fs")
}

func (s *Service) hasLayer(chainID string) bool {
	_, err := os.Stat(filepath.Join(s.layerDir(chainID), "meta.json"))
	return err == nil
}

// ChainIDs computes the OCI chain IDs of a stack of diff IDs:
// chain(0) = diff(0); chain(n) = sha256(chain(n-1) + " " + diff(n)).
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// unpackLayer reads one compressed layer stream, checks both digests and
// installs it as chainID. It returns the compressed size read.
func (s *Service) unpackLayer(chainID, wantDigest, wantDiffID string, compressed io.Reader) (int64, error) {
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "layer-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return 0, err
	}

	compHash := sha256.New()
	counted := &countingReader{r: io.TeeReader(compressed, compHash)}
	plain, err := unpack.Decompress(counted)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", wantDigest, err)
	}
	diffHash := sha256.New()
	res, err := unpack.Apply(fsDir, io.TeeReader(plain, diffHash))
	plain.Close()
	if err != nil {
		var esc *unpack.EscapeError
		if errors.As(err, &esc) {
			return 0, errorf(ErrBadContent, "layer %s: %v", wantDigest, err)
		}
		return 0, fmt.Errorf("layer %s: %w", wantDigest, err)
	}
	// The compressed stream may carry bytes after the end of the tar; the
	// digest covers them too.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return 0, fmt.Errorf("layer %s: %w", wantDigest, err)
	}
	if wantDigest != "" {
		if got := "sha256:" + hex.EncodeToString(compHash.Sum(nil)); got != wantDigest {
			return 0, errorf(ErrBadContent, "layer %s: downloaded content has digest %s", wantDigest, got)
		}
	}
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != wantDiffID {
		return 0, errorf(ErrBadContent, "layer %s: uncompressed content has digest %s, config says %s", wantDigest, got, wantDiffID)
	}
	meta := layerMeta{DiffID: wantDiffID, Bytes: res.Bytes, Inodes: res.Inodes}
	data, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), data, 0o600); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, s.layerDir(chainID)); err != nil {
		if s.hasLayer(chainID) {
			return counted.n, nil
		}
		return 0, err
	}
	s.usage.addLayer(chainID, meta)
	return counted.n, nil
}

// trashLayer moves a layer out of place into tmp/ and returns the path to
// delete. The rename makes the removal atomic: a crash during the slow
// recursive delete never leaves half a layer where a whole one is expected.
func (s *Service) trashLayer(chainID string) (string, error) {
	trash, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "rm-")
	if err != nil {
		return "", err
	}
	if err := os.Rename(s.layerDir(chainID), filepath.Join(trash, "layer")); err != nil && !os.IsNotExist(err) {
		os.Remove(trash)
		return "", err
	}
	s.usage.removeLayer(chainID)
	return trash, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
