package images

import (
	"slices"
	"time"
)

// Image is the stored record of one image, keyed by ID (its config digest).
type Image struct {
	ID             string   `json:"id"`
	RepoTags       []string `json:"repoTags,omitempty"`
	RepoDigests    []string `json:"repoDigests,omitempty"`
	ManifestDigest string   `json:"manifestDigest"`
	IndexDigest    string   `json:"indexDigest,omitempty"`
	// Layers in order, bottom first.
	Layers []Layer `json:"layers"`
	// Size is the bytes transferred to hold the image: manifest, config and
	// compressed layers, the figure `crictl images` shows.
	Size        int64             `json:"size"`
	User        string            `json:"user,omitempty"`
	Pinned      bool              `json:"pinned,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Pulled      time.Time         `json:"pulled"`
}

// Layer is one layer of an image.
type Layer struct {
	Digest    string `json:"digest,omitempty"` // compressed, as in the manifest
	DiffID    string `json:"diffID"`
	ChainID   string `json:"chainID"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType,omitempty"`
}

// ChainIDs lists the image's layers by chain ID, bottom first.
func (img *Image) ChainIDs() []string {
	out := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		out[i] = l.ChainID
	}
	return out
}

func (img *Image) clone() *Image {
	c := *img
	c.RepoTags = slices.Clone(img.RepoTags)
	c.RepoDigests = slices.Clone(img.RepoDigests)
	c.Layers = slices.Clone(img.Layers)
	return &c
}

// blobs lists the digests of the blobs this image keeps.
func (img *Image) blobs() []string {
	out := []string{img.ID, img.ManifestDigest}
	if img.IndexDigest != "" {
		out = append(out, img.IndexDigest)
	}
	return out
}
