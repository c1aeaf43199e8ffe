// Package images is berthd's image store: it pulls from registries, keeps
// blobs by digest, unpacks each layer once, and records images in the state
// store.
package images

import (
	"encoding/json"
	"errors"
	"fmt"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/berth-runtime/berth/pkg/config"
	"github.com/berth-runtime/berth/pkg/store"
)

const bucketImages = "images"

// Buckets lists the state-store buckets this package uses.
var Buckets = []string{bucketImages, bucketImports}

// Service owns the image store under <root>/images.
type Service struct {
	dir   string
	db    *store.Store
	log   *logrus.Entry
	usage *usage

	// mu guards the records, their name indexes and leases. Disk work and
	// network work happen outside it.
	mu     sync.RWMutex
	images map[string]*Image // by ID
	tags   map[string]string // repo:tag -> ID
	leases map[string]int    // chain IDs and blob digests in use by pulls

	cfgMu   sync.RWMutex
	regs    map[string]config.Registry
	auth    authFile
	timeout config.Duration
	jobs    int

	layerFlight flightGroup // by chain ID
	pullFlight  flightGroup // by reference

	pulledBytes  atomic.Int64
	pullObserver pullObserver // metrics; set once before serving
	pulling      atomic.Int32 // pulls in progress (pull_trim.go)
}

// New opens the image store under root and loads its records.
func New(root string, db *store.Store, cfg config.Config, log *logrus.Entry) (*Service, error) {
	s := &Service{
		dir:    filepath.Join(root, "images"),
		db:     db,
		log:    log,
		usage:  newUsage(),
		images: map[string]*Image{},
		tags:   map[string]string{},
		leases: map[string]int{},
	}
	for _, d := range []string{"blobs/sha256", "layers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	// Whatever is under tmp/ was being written when berthd last stopped:
	// it was never used and never will be.
	if err := clearDir(filepath.Join(s.dir, "tmp")); err != nil {
		return nil, err
	}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	err := db.View(func(tx *store.Tx) error {
		return store.All(tx, bucketImages, func(id string, img *Image) error {
			s.images[id] = img
			for _, t := range img.RepoTags {
				s.tags[t] = id
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if err := s.usage.scan(s.dir); err != nil {
		return nil, err
	}
	// Layers and blobs that no record names are kept: they are whole and
	// verified (a pull cut short by a crash left them), so the next pull
	// uses them instead of fetching them again. The next removal collects
	// whatever stays unused.
	return s, nil
}

// Reload applies the parts of the config that may change while running:
// registries and the node auth file.
func (s *Service) Reload(cfg config.Config) error {
	auth, err := loadAuthFile(cfg.Image.AuthFile)
	if err != nil {
		return err
	}
	s.cfgMu.Lock()
	s.regs = cfg.Registries
	s.auth = auth
	s.timeout = cfg.Image.PullProgressTimeout
	s.jobs = cfg.Image.MaxConcurrentDownloads
	s.cfgMu.Unlock()
	return nil
}

// Dir is where the image store keeps its files; ImageFsInfo reports it.
func (s *Service) Dir() string { return s.dir }

// Usage returns bytes and inodes used by the store.
func (s *Service) Usage() (bytes, inodes int64) { return s.usage.totals() }

// List returns every image, sorted by ID for stable output.
func (s *Service) List() []*Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get finds an image by ID, unique ID prefix, repo:tag (short names
// normalised) or repo@digest. It returns nil when none matches.
func (s *Service) Get(name string) *Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if img := s.resolve(name); img != nil {
		return img.clone()
	}
	return nil
}

func (s *Service) resolve(name string) *Image {
	if img, ok := s.images[name]; ok {
		return img
	}
	if ref, err := ParseRef(name); err == nil {
		if ref.Digest == "" {
			if id, ok := s.tags[ref.TagRef()]; ok {
				return s.images[id]
			}
		} else {
			want := ref.Repo + "@" + ref.Digest
			for _, img := range s.images {
				for _, d := range img.RepoDigests {
					if d == want {
						return img
					}
				}
			}
		}
	}
	if hex, ok := isImageID(name); ok {
		var found *Image
		for id, img := range s.images {
			if strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), hex) {
				if found != nil {
					return nil // ambiguous
				}
				found = img
			}
		}
		return found
	}
	return nil
}

// Remove deletes an image by ID or digest, or one tag of it. Removing one
// of several tags keeps the image under its other tags. Removing what does
// not exist succeeds, as CRI asks.
func (s *Service) Remove(name string) error {
	s.mu.Lock()
	img := s.resolve(name)
	if img == nil {
		s.mu.Unlock()
		return nil
	}
	next := (*Image)(nil)
	if ref, err := ParseRef(name); err == nil && ref.Digest == "" && len(img.RepoTags) > 1 && s.tags[ref.TagRef()] == img.ID {
		next = img.clone()
		next.RepoTags = without(next.RepoTags, ref.TagRef())
	}
	err := s.db.Update(func(tx *store.Tx) error {
		if next != nil {
			return tx.Put(bucketImages, img.ID, next)
		}
		return tx.Delete(bucketImages, img.ID)
	})
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	for _, t := range img.RepoTags {
		delete(s.tags, t)
	}
	if next != nil {
		s.images[img.ID] = next
		for _, t := range next.RepoTags {
			s.tags[t] = img.ID
		}
		s.mu.Unlock()
		return nil
	}
	delete(s.images, img.ID)
	s.mu.Unlock()
	s.collect()
	return nil
}

func without(list []string, v string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// commit records an image pulled under a tag and repo digest. A tag held
// by another image moves here; that image stays, untagged if it has no
// other tag, until it is removed.
func (s *Service) commit(img *Image, tag, repoDigest string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := img
	if old, ok := s.images[img.ID]; ok {
		rec = old.clone()
		rec.Layers, rec.Size, rec.ManifestDigest, rec.IndexDigest, rec.User = img.Layers, img.Size, img.ManifestDigest, img.IndexDigest, img.User
	}
	changed := map[string]*Image{}
	if tag != "" {
		if owner, ok := s.tags[tag]; ok && owner != img.ID {
			prev := s.images[owner].clone()
			prev.RepoTags = without(prev.RepoTags, tag)
			changed[owner] = prev
		}
		if !contains(rec.RepoTags, tag) {
			rec.RepoTags = append(rec.RepoTags, tag)
		}
	}
	if repoDigest != "" && !contains(rec.RepoDigests, repoDigest) {
		rec.RepoDigests = append(rec.RepoDigests, repoDigest)
	}
	changed[img.ID] = rec
	err := s.db.Update(func(tx *store.Tx) error {
		for id, r := range changed {
			if err := tx.Put(bucketImages, id, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record image %s: %w", img.ID, err)
	}
	for id, r := range changed {
		s.images[id] = r
		for _, t := range r.RepoTags {
			s.tags[t] = id
		}
	}
	return rec.clone(), nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// lease marks content as in use by a pull so collection leaves it alone;
// the returned func releases it.
func (s *Service) lease(keys ...string) func() {
	s.mu.Lock()
	for _, k := range keys {
		s.leases[k]++
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		for _, k := range keys {
			if s.leases[k]--; s.leases[k] <= 0 {
				delete(s.leases, k)
			}
		}
		s.mu.Unlock()
	}
}

// Hold keeps layers from being collected while a container's root stacks
// them, even if their image is removed; the returned func lets them go.
func (s *Service) Hold(chainIDs ...string) func() { return s.lease(chainIDs...) }

// Release lets layers held by Hold go, and deletes them at once if no image
// uses them any more (their image was removed while a container used
// them). Layers that images still use cost no disk walk here.
func (s *Service) Release(release func(), chainIDs ...string) {
	release()
	s.mu.RLock()
	orphaned := false
	for _, c := range chainIDs {
		if !s.layerUsedLocked(c) {
			orphaned = true
			break
		}
	}
	s.mu.RUnlock()
	if orphaned {
		s.collect()
	}
}

func (s *Service) layerUsedLocked(chain string) bool {
	if s.leases[chain] > 0 {
		return true
	}
	for _, img := range s.images {
		for _, l := range img.Layers {
			if l.ChainID == chain {
				return true
			}
		}
	}
	return false
}

// collect deletes blobs and layers that no image names and no pull holds.
// Each victim is moved out of place while mu is held, so a pull that leases
// it afterwards finds it missing and fetches it again rather than using a
// directory that is being deleted.
func (s *Service) collect() {
	var trash []string
	s.mu.Lock()
	used := map[string]bool{}
	for _, img := range s.images {
		for _, b := range img.blobs() {
			used[b] = true
		}
		for _, l := range img.Layers {
			used[l.ChainID] = true
		}
	}
	for k := range s.leases {
		used[k] = true
	}
	if entries, err := os.ReadDir(filepath.Join(s.dir, "layers")); err == nil {
		for _, e := range entries {
			chain := "sha256:" + e.Name()
			if used[chain] {
				continue
			}
			if t, err := s.trashLayer(chain); err == nil {
				trash = append(trash, t)
			} else {
				s.log.WithError(err).Warnf("removing unused layer %s", chain)
			}
		}
	}
	if entries, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256")); err == nil {
		for _, e := range entries {
			if d := "sha256:" + e.Name(); !used[d] {
				if err := s.removeBlob(d); err != nil {
					s.log.WithError(err).Warnf("removing unused blob %s", d)
				}
			}
		}
	}
	s.mu.Unlock()
	for _, t := range trash {
		if err := os.RemoveAll(t); err != nil {
			s.log.WithError(err).Warnf("removing %s", t)
		}
	}
}

func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// Config returns an image's OCI config, read from its verified blob.
func (s *Service) Config(img *Image) (*ocispec.Image, error) {
	data, err := s.readBlob(img.ID)
	if err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.ID, err)
	}
	return &cfg, nil
}
