package images

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// authFile is the node's credentials, in Docker's config.json shape:
// {"auths": {"registry.example": {"auth": "base64(user:pass)"}}}.
type authFile map[string]authn.AuthConfig

// loadAuthFile reads path; a missing file means no credentials.
func loadAuthFile(path string) (authFile, error) {
	if path == "" {
		return authFile{}, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return authFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	var doc struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	out := authFile{}
	for key, a := range doc.Auths {
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			user, pass, err := decodeBasic(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("auth file %s: auths.%q.auth: %w", path, key, err)
			}
			cfg.Username, cfg.Password = user, pass
		}
		out[authKey(key)] = cfg
	}
	return out, nil
}

func decodeBasic(s string) (string, string, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", fmt.Errorf("not base64: %v", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("not user:password")
	}
	return user, pass, nil
}

// authKey turns the spellings Docker tools use for a registry
// ("https://index.docker.io/v1/", "registry.example/") into its host.
func authKey(key string) string {
	if strings.Contains(key, "://") {
		if u, err := url.Parse(key); err == nil {
			key = u.Host
		}
	}
	key = strings.SplitN(key, "/", 2)[0]
	switch key {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return key
}

// lookup finds credentials for a registry or the host serving it.
func (a authFile) lookup(names ...string) (authn.AuthConfig, bool) {
	for _, n := range names {
		if c, ok := a[authKey(n)]; ok {
			return c, true
		}
	}
	return authn.AuthConfig{}, false
}
