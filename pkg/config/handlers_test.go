package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRuntimeHandlers(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "myruntime")
	plain := filepath.Join(dir, "notexec")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(plain, []byte("x"), 0o644)
	cases := []struct {
		name, in string
		key      string // "" for accepted
	}{
		{"accepted", "[runtime.handlers.rt]\npath = \"" + exe + "\"\nroot = \"/run/rt\"", ""},
		{"quoted name", "[runtime.handlers.\"rt-2\"]\npath = \"" + exe + "\"", ""},
		{"empty name reserved", "[runtime.handlers.\"\"]\npath = \"" + exe + "\"", `runtime.handlers.""`},
		{"berth reserved", "[runtime.handlers.berth]\npath = \"" + exe + "\"", `runtime.handlers."berth"`},
		{"slash in name", "[runtime.handlers.\"a/b\"]\npath = \"" + exe + "\"", `runtime.handlers."a/b"`},
		{"no path", "[runtime.handlers.rt]\nroot = \"/run/rt\"", `runtime.handlers."rt".path`},
		{"relative path", "[runtime.handlers.rt]\npath = \"runc\"", `runtime.handlers."rt".path`},
		{"relative root", "[runtime.handlers.rt]\npath = \"" + exe + "\"\nroot = \"run\"", `runtime.handlers."rt".root`},
		{"missing binary", "[runtime.handlers.rt]\npath = \"" + filepath.Join(dir, "none") + "\"", `runtime.handlers."rt".path`},
		{"not executable", "[runtime.handlers.rt]\npath = \"" + plain + "\"", `runtime.handlers."rt".path`},
		{"a directory", "[runtime.handlers.rt]\npath = \"" + dir + "\"", `runtime.handlers."rt".path`},
		{"unknown key", "[runtime.handlers.rt]\npath = \"" + exe + "\"\nargs = []", "args"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "berth.toml")
			os.WriteFile(path, []byte(tc.in), 0o644)
			cfg, err := Load(path, true)
			if tc.key == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(cfg.Runtime.Handlers) != 1 {
					t.Fatalf("handlers %+v", cfg.Runtime.Handlers)
				}
				for _, h := range cfg.Runtime.Handlers {
					if h.Path != exe {
						t.Fatalf("path %q", h.Path)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %q", tc.in)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

// A config without handlers has an empty map, as the defaults do, so that
// the round trip and lookups need no nil check.
func TestNoHandlersIsEmptyMap(t *testing.T) {
	var cfg Config
	if err := Decode([]byte(`root = "/x"`), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.Handlers == nil || len(Default().Runtime.Handlers) != 0 {
		t.Fatalf("handlers %v, default %v", cfg.Runtime.Handlers, Default().Runtime.Handlers)
	}
}
