package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// Pod and container records live under state_dir and end with the node;
// writable layers under root must not outlive them. berthd removes any
// container or pod directory that no record names when it starts.
func TestStrayDirectoriesRemovedAtStart(t *testing.T) {
	d := newDaemon(t, "")
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	strays := []string{
		filepath.Join(d.root, "containers", id, "upper", "file"),
		filepath.Join(d.state, "containers", id, "config.json"),
		filepath.Join(d.state, "pods", id, "hosts"),
	}
	for _, p := range strays {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d.start()
	for _, p := range strays {
		dir := filepath.Dir(p)
		for filepath.Base(filepath.Dir(dir)) != "containers" && filepath.Base(filepath.Dir(dir)) != "pods" {
			dir = filepath.Dir(dir)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still there after start (%v)", dir, err)
		}
	}
}
