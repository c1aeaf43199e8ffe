package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/berth-runtime/berth/pkg/store"
)

const bucketImports = "imports"

// importStamp identifies one version of an archive file, so an archive is
// imported once, and again only when it is replaced.
type importStamp struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
	Images  []string  `json:"images,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// settle is how long a file must stay unchanged before it is read, so an
// archive still being copied in is not imported half-written.
const settle = time.Second

// WatchImportDir imports the archives in dir now and whenever one appears
// or changes, until ctx ends. Files whose names start with "." are skipped
// (the convention for a file being written before it is renamed in).
func (s *Service) WatchImportDir(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("import dir: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("import dir: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("import dir %s: %w", dir, err)
	}
	pending := s.scanImportDir(ctx, dir)
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		if pending {
			timer = time.After(settle)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Chmod) {
					timer = time.After(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.WithError(err).Warn("watching the import dir")
			case <-timer:
				timer = nil
				if s.scanImportDir(ctx, dir) {
					timer = time.After(settle)
				}
			}
		}
	}()
	return nil
}

// scanImportDir imports what is new in dir. It reports whether a file was
// too fresh to read yet, so the caller looks again once it has settled:
// an archive copied in just before berthd started gets no event.
func (s *Service) scanImportDir(ctx context.Context, dir string) (pending bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		s.log.WithError(err).Warn("reading the import dir")
		return false
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if time.Since(info.ModTime()) < settle {
			pending = true
			continue
		}
		var seen importStamp
		_ = s.db.View(func(tx *store.Tx) error { return tx.Get(bucketImports, e.Name(), &seen) })
		if seen.Size == info.Size() && seen.ModTime.Equal(info.ModTime()) {
			continue
		}
		stamp := importStamp{Size: info.Size(), ModTime: info.ModTime()}
		imgs, err := s.ImportFile(ctx, filepath.Join(dir, e.Name()))
		if err != nil {
			stamp.Error = err.Error()
			s.log.WithError(err).Errorf("import %s", e.Name())
		}
		for _, img := range imgs {
			stamp.Images = append(stamp.Images, img.ID)
			s.log.Infof("imported %s from %s as %v", img.ID, e.Name(), img.RepoTags)
		}
		if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(bucketImports, e.Name(), stamp) }); err != nil {
			s.log.WithError(err).Warn("recording an import")
		}
	}
	return pending
}

// ImportFile imports one archive file.
func (s *Service) ImportFile(ctx context.Context, path string) ([]*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	imgs, err := s.Import(ctx, f)
	if err != nil {
		return imgs, fmt.Errorf("import %s: %w", path, err)
	}
	return imgs, nil
}
