package images

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
)

// usage keeps the bytes and inodes of the image store in memory, updated as
// blobs and layers come and go, so ImageFsInfo, which kubelet calls every
// few seconds, never walks the layer trees.
type usage struct {
	mu     sync.Mutex
	blobs  map[string]int64
	layers map[string]layerMeta
}

func newUsage() *usage {
	return &usage{blobs: map[string]int64{}, layers: map[string]layerMeta{}}
}

func (u *usage) addBlob(d string, n int64) { u.mu.Lock(); u.blobs[d] = n; u.mu.Unlock() }
func (u *usage) removeBlob(d string)       { u.mu.Lock(); delete(u.blobs, d); u.mu.Unlock() }
func (u *usage) addLayer(c string, m layerMeta) {
	u.mu.Lock()
	u.layers[c] = m
	u.mu.Unlock()
}
func (u *usage) removeLayer(c string) { u.mu.Lock(); delete(u.layers, c); u.mu.Unlock() }

// totals returns bytes and inodes: every blob is one inode, every layer
// its entries plus its directory and metadata file.
func (u *usage) totals() (bytes, inodes int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, n := range u.blobs {
		bytes += n
		inodes++
	}
	for _, m := range u.layers {
		bytes += m.Bytes
		inodes += m.Inodes + 3
	}
	return bytes, inodes
}

// scan rebuilds the figures from disk at start.
func (u *usage) scan(dir string) error {
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if info, err := b.Info(); err == nil {
			u.addBlob("sha256:"+b.Name(), info.Size())
		}
	}
	layers, err := os.ReadDir(filepath.Join(dir, "layers"))
	if err != nil {
		return err
	}
	for _, l := range layers {
		data, err := os.ReadFile(filepath.Join(dir, "layers", l.Name(), "meta.json"))
		if err != nil {
			continue // not a whole layer; gc removes it
		}
		var m layerMeta
		if json.Unmarshal(data, &m) == nil {
			u.addLayer("sha256:"+l.Name(), m)
		}
	}
	return nil
}
