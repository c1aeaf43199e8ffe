package images

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Blobs (manifests, indexes, configs) live under blobs/sha256/<hex>, named by
// their digest. They are written to tmp/, checked, synced and renamed, so a
// file under blobs/ is always complete and verified.

func (s *Service) blobPath(dgst string) (string, error) {
	hexPart, ok := strings.CutPrefix(dgst, "sha256:")
	if !ok || len(hexPart) != 64 {
		return "", fmt.Errorf("unsupported digest %q", dgst)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", fmt.Errorf("invalid digest %q", dgst)
	}
	return filepath.Join(s.dir, "blobs", "sha256", hexPart), nil
}

// writeBlob stores data under its digest after checking it.
func (s *Service) writeBlob(dgst string, data []byte) error {
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != dgst {
		return errorf(ErrBadContent, "blob %s: content has digest %s", dgst, got)
	}
	path, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	s.usage.addBlob(dgst, int64(len(data)))
	return nil
}

// readBlob returns a stored blob, checking it again: a blob that was
// damaged on disk is reported rather than used.
func (s *Service) readBlob(dgst string) ([]byte, error) {
	path, err := s.blobPath(dgst)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != dgst {
		return nil, errorf(ErrBadContent, "stored blob %s is damaged", dgst)
	}
	return data, nil
}

func (s *Service) removeBlob(dgst string) error {
	path, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	s.usage.removeBlob(dgst)
	return nil
}
