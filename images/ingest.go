package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// source is where an image's blobs come from: a registry or an archive.
type source struct {
	name string
	// open returns a blob's bytes as stored (compressed for layers). The
	// caller checks the digest.
	open func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error)
}

// maxMetaSize bounds manifests and configs read into memory.
const maxMetaSize = 8 << 20

func readAllLimited(r io.Reader, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxMetaSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxMetaSize {
		return nil, errorf(ErrBadContent, "%s is larger than %d bytes", what, maxMetaSize)
	}
	return data, nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ingest stores one image manifest's config and layers, fetching only what
// is not stored yet, and returns the image (not yet recorded). The caller
// holds the returned release func until the image is committed.
func (s *Service) ingest(ctx context.Context, src source, rawManifest []byte, jobs int) (*Image, func(), error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return nil, nil, errorf(ErrBadContent, "%s: manifest: %v", src.name, err)
	}
	if m.Config.Digest == "" {
		return nil, nil, errorf(ErrBadContent, "%s: manifest has no config", src.name)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, nil, errorf(ErrBadContent, "%s: config digest: %v", src.name, err)
	}
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, nil, errorf(ErrBadContent, "%s: layer %d digest: %v", src.name, i, err)
		}
	}
	cfgDigest := m.Config.Digest.String()
	rawConfig, err := s.fetchSmallBlob(ctx, src, m.Config)
	if err != nil {
		return nil, nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return nil, nil, errorf(ErrBadContent, "%s: config %s: %v", src.name, cfgDigest, err)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, nil, errorf(ErrBadContent, "%s: image is for %s, not linux", src.name, cfg.OS)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, nil, errorf(ErrBadContent, "%s: manifest has %d layers, config %d diff IDs", src.name, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	diffIDs := make([]string, len(m.Layers))
	for i, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, nil, errorf(ErrBadContent, "%s: diff ID %d: %v", src.name, i, err)
		}
		diffIDs[i] = d.String()
	}
	chains := ChainIDs(diffIDs)
	mdigest := digestOf(rawManifest)
	release := s.lease(append([]string{cfgDigest, mdigest}, chains...)...)

	img := &Image{
		ID:             cfgDigest,
		ManifestDigest: mdigest,
		Layers:         make([]Layer, len(m.Layers)),
		Size:           int64(len(rawManifest)) + int64(len(rawConfig)),
		User:           cfg.Config.User,
		Annotations:    m.Annotations,
		Pulled:         time.Now().UTC(),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, l := range m.Layers {
		img.Layers[i] = Layer{Digest: l.Digest.String(), DiffID: diffIDs[i], ChainID: chains[i], Size: l.Size, MediaType: l.MediaType}
		img.Size += l.Size
		if s.hasLayer(chains[i]) {
			continue
		}
		g.Go(func() error { return s.fetchLayer(gctx, src, l, diffIDs[i], chains[i]) })
	}
	if err := g.Wait(); err != nil {
		release()
		return nil, nil, err
	}
	if err := s.writeBlob(cfgDigest, rawConfig); err != nil {
		release()
		return nil, nil, err
	}
	if err := s.writeBlob(mdigest, rawManifest); err != nil {
		release()
		return nil, nil, err
	}
	return img, release, nil
}

func (s *Service) fetchSmallBlob(ctx context.Context, src source, d ocispec.Descriptor) ([]byte, error) {
	if data, err := s.readBlob(d.Digest.String()); err == nil {
		return data, nil
	}
	rc, err := src.open(ctx, d)
	if err != nil {
		return nil, classify(fmt.Errorf("%s: fetch %s: %w", src.name, d.Digest, err))
	}
	defer rc.Close()
	data, err := readAllLimited(rc, "blob "+d.Digest.String())
	if err != nil {
		return nil, classify(fmt.Errorf("%s: fetch %s: %w", src.name, d.Digest, err))
	}
	if got := digestOf(data); got != d.Digest.String() {
		return nil, errorf(ErrBadContent, "%s: blob %s has digest %s", src.name, d.Digest, got)
	}
	return data, nil
}

// fetchLayer downloads and unpacks one layer. Concurrent pulls that need
// the same layer share one download.
func (s *Service) fetchLayer(ctx context.Context, src source, d ocispec.Descriptor, diffID, chain string) error {
	_, err := s.layerFlight.Do(ctx, chain, func(ctx context.Context) (any, error) {
		if s.hasLayer(chain) {
			return nil, nil
		}
		start := time.Now()
		rc, err := src.open(ctx, d)
		if err != nil {
			return nil, classify(fmt.Errorf("%s: fetch layer %s: %w", src.name, d.Digest, err))
		}
		defer rc.Close()
		n, err := s.unpackLayer(chain, d.Digest.String(), diffID, rc)
		if err != nil {
			return nil, classify(fmt.Errorf("%s: %w", src.name, err))
		}
		s.log.Debugf("layer %s: %d bytes in %s", d.Digest, n, time.Since(start).Round(time.Millisecond))
		return nil, nil
	})
	return err
}
