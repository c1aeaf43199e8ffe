package unpack

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchLayer resembles a distribution base layer: a few hundred
// directories, thousands of mostly small files, some large ones,
// symlinks and hardlinks.
func benchLayer(tb testing.TB) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var entries []ent
	payload := make([]byte, 4<<20)
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	for d := 0; d < 300; d++ {
		dn := fmt.Sprintf("usr/lib/pkg%03d/", d)
		entries = append(entries, dir(dn))
		for f := 0; f < 10; f++ {
			size := 200 + r.IntN(16<<10)
			if r.IntN(100) == 0 {
				size = 1<<20 + r.IntN(3<<20)
			}
			name := fmt.Sprintf("%sfile%02d.so", dn, f)
			entries = append(entries, file(name, string(payload[:size])))
			if f == 0 {
				entries = append(entries, symlink(name+".1", filepath.Base(name)), hardlink(name+".hard", name))
			}
		}
	}
	return buildTar(tb, append([]ent{dir("usr/"), dir("usr/lib/")}, entries...)...)
}

// BenchmarkApply measures extraction of benchLayer. Run it with TMPDIR on
// a tmpfs to see Apply's own cost rather than the disk's.
func BenchmarkApply(b *testing.B) {
	data := benchLayer(b)
	b.SetBytes(int64(len(data)))
	root := b.TempDir()
	for i := 0; b.Loop(); i++ {
		layer := filepath.Join(root, fmt.Sprint(i))
		if err := os.Mkdir(layer, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := Apply(layer, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(layer)
		b.StartTimer()
	}
}
