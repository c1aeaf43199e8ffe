package images

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadAuthFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	doc := `{"auths": {
		"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
		"registry.example:5000": {"username": "u2", "password": "p2"},
		"http://127.0.0.1:5000/v2/": {"auth": "YTpiOmM="}
	}}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := loadAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := a.lookup("docker.io"); !ok || c.Username != "user" || c.Password != "pass" {
		t.Errorf("docker.io: %+v %v", c, ok)
	}
	if c, ok := a.lookup("registry.example:5000"); !ok || c.Username != "u2" {
		t.Errorf("registry.example: %+v", c)
	}
	// A password may itself contain a colon.
	if c, ok := a.lookup("quay.io", "127.0.0.1:5000"); !ok || c.Username != "a" || c.Password != "b:c" {
		t.Errorf("mirror host fallback: %+v %v", c, ok)
	}
	if _, ok := a.lookup("ghcr.io"); ok {
		t.Error("found credentials for an unknown registry")
	}
	if a, err := loadAuthFile(filepath.Join(t.TempDir(), "missing")); err != nil || len(a) != 0 {
		t.Errorf("missing file: %v %v", a, err)
	}
	os.WriteFile(path, []byte(`{"auths": {"x": {"auth": "!!"}}}`), 0o600)
	if _, err := loadAuthFile(path); err == nil {
		t.Error("bad base64 accepted")
	}
}
