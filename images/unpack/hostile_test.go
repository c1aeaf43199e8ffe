package unpack

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHostileLayers feeds layers that try to reach outside the layer
// directory. Each must fail with an EscapeError naming the offending
// entry, and nothing next to the layer directory may change.
func TestHostileLayers(t *testing.T) {
	cases := []struct {
		name string
		// entries builds the layer; s gives the absolute paths of the
		// victims for cases that aim at them directly.
		entries func(s *sandbox) []ent
		culprit string // entry the error must name
	}{
		{
			name:    "dotdot",
			entries: func(*sandbox) []ent { return []ent{file("../victim", "pwned")} },
			culprit: "../victim",
		},
		{
			name:    "dotdot after a directory",
			entries: func(*sandbox) []ent { return []ent{dir("a/"), file("a/../../victim", "pwned")} },
			culprit: "a/../../victim",
		},
		{
			name:    "dotdot directory",
			entries: func(*sandbox) []ent { return []ent{dir("../victimdir/")} },
			culprit: "../victimdir/",
		},
		{
			name:    "absolute path",
			entries: func(s *sandbox) []ent { return []ent{file(s.victim, "pwned")} },
			culprit: "", // filled in below: the absolute victim path
		},
		{
			name: "absolute symlink then write through it",
			entries: func(s *sandbox) []ent {
				return []ent{symlink("link", s.victimDir), file("link/inner", "pwned")}
			},
			culprit: "link/inner",
		},
		{
			name: "absolute symlink to / then write through it",
			entries: func(s *sandbox) []ent {
				return []ent{symlink("root", "/"), file("root"+s.victim, "pwned")}
			},
			culprit: "", // filled in below
		},
		{
			name: "relative symlink then write through it",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", "../victimdir"), file("link/inner", "pwned")}
			},
			culprit: "link/inner",
		},
		{
			name: "relative symlink climbing far then write through it",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", "../../.."), file("link/evil", "pwned")}
			},
			culprit: "link/evil",
		},
		{
			name: "symlink then mkdir through it",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", "../victimdir"), dir("link/newdir/")}
			},
			culprit: "link/newdir/",
		},
		{
			name: "symlinked parent directory",
			entries: func(s *sandbox) []ent {
				return []ent{dir("d/"), symlink("d/sub", s.victimDir), file("d/sub/inner", "pwned")}
			},
			culprit: "d/sub/inner",
		},
		{
			name: "symlink inside the layer to a symlink that leaves",
			entries: func(*sandbox) []ent {
				return []ent{dir("d/"), symlink("d/up", "../.."), symlink("in", "d"), file("in/up/victim", "pwned")}
			},
			culprit: "in/up/victim",
		},
		{
			name: "directory replaced by an escaping symlink",
			entries: func(*sandbox) []ent {
				return []ent{dir("d/"), file("d/f", "x"), symlink("d", "../victimdir"), file("d/inner", "pwned")}
			},
			culprit: "d/inner",
		},
		{
			name: "implicit parents under an escaping symlink",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", "../victimdir"), file("link/a/b/c", "pwned")}
			},
			culprit: "link/a/b/c",
		},
		{
			name: "symlink loop",
			entries: func(*sandbox) []ent {
				return []ent{symlink("loop", "loop"), file("loop/x", "pwned")}
			},
			culprit: "loop/x",
		},
		{
			name: "magic link",
			entries: func(s *sandbox) []ent {
				return []ent{symlink("proc", "/proc/self/root"+s.victimDir), file("proc/inner", "pwned")}
			},
			culprit: "proc/inner",
		},
		{
			name: "hardlink to an absolute path",
			entries: func(s *sandbox) []ent {
				return []ent{hardlink("h", s.victim)}
			},
			culprit: "h",
		},
		{
			name:    "hardlink with dotdot",
			entries: func(*sandbox) []ent { return []ent{hardlink("h", "../victim")} },
			culprit: "h",
		},
		{
			name: "hardlink through an absolute symlink",
			entries: func(s *sandbox) []ent {
				return []ent{symlink("link", filepath.Dir(s.victim)), hardlink("h", "link/victim")}
			},
			culprit: "h",
		},
		{
			name: "hardlink through a relative symlink",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", ".."), hardlink("h", "link/victim")}
			},
			culprit: "h",
		},
		{
			name: "whiteout through a symlink",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", "../victimdir"), file("link/.wh.inner", "")}
			},
			culprit: "link/.wh.inner",
		},
		{
			name: "opaque marker through a symlink",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", "../victimdir"), file("link/.wh..wh..opq", "")}
			},
			culprit: "link/.wh..wh..opq",
		},
		{
			name:    "whiteout of the parent directory",
			entries: func(*sandbox) []ent { return []ent{file(".wh...", "")} },
			culprit: ".wh...",
		},
		{
			name: "device node through a symlink",
			entries: func(*sandbox) []ent {
				return []ent{symlink("link", "../victimdir"), {hdr: tar.Header{Typeflag: tar.TypeChar, Name: "link/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}}
			},
			culprit: "link/null",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			entries := tc.entries(s)
			culprit := tc.culprit
			if culprit == "" {
				culprit = entries[len(entries)-1].hdr.Name
			}
			before := s.snapshot(t)
			_, err := Apply(s.layer, bytes.NewReader(buildTar(t, entries...)))
			esc, ok := asEscape(err)
			if !ok {
				t.Fatalf("Apply error = %v, want an EscapeError", err)
			}
			if esc.Entry != culprit || !strings.Contains(err.Error(), culprit) {
				t.Errorf("error %q names entry %q, want %q", err, esc.Entry, culprit)
			}
			s.assertUnchanged(t, before)
		})
	}
}

// TestReplacingSymlinksToOutside checks entries whose name is already a
// symlink pointing outside: they replace the symlink (legitimately: later
// entries override earlier ones) and never act through it.
func TestReplacingSymlinksToOutside(t *testing.T) {
	cases := []struct {
		name  string
		entry func(s *sandbox) ent
		kind  uint32
	}{
		{"regular file", func(*sandbox) ent {
			return with(file("link", "pwned"), func(h *tar.Header) { h.Mode = 0o4777; h.Uid = 99 })
		}, unix.S_IFREG},
		{"directory", func(*sandbox) ent { return with(dir("link"), func(h *tar.Header) { h.Mode = 0o777; h.Uid = 99 }) }, unix.S_IFDIR},
		{"symlink", func(*sandbox) ent { return symlink("link", "elsewhere") }, unix.S_IFLNK},
		{"fifo", func(*sandbox) ent { return ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "link", Mode: 0o777}} }, unix.S_IFIFO},
		{"hardlink", func(*sandbox) ent { return hardlink("link", "other") }, unix.S_IFREG},
		{"whiteout", func(*sandbox) ent { return file(".wh.link", "") }, unix.S_IFLNK},
	}
	for _, tc := range cases {
		for _, target := range []string{"abs", "rel"} {
			t.Run(tc.name+"/"+target, func(t *testing.T) {
				s := newSandbox(t)
				linkTarget := s.victim
				if target == "rel" {
					linkTarget = "../victim"
				}
				entries := []ent{file("other", "other"), symlink("link", linkTarget), tc.entry(s)}
				before := s.snapshot(t)
				if _, err := Apply(s.layer, bytes.NewReader(buildTar(t, entries...))); err != nil {
					t.Fatalf("Apply: %v", err)
				}
				s.assertUnchanged(t, before)
				st := lstat(t, filepath.Join(s.layer, "link"))
				if st.Mode&unix.S_IFMT != tc.kind {
					t.Errorf("link has type %o, want %o", st.Mode&unix.S_IFMT, tc.kind)
				}
			})
		}
	}
}

// TestHardlinkToEscapingSymlink links to a symlink that points outside:
// the link names the symlink itself, and the header's mode and owner must
// not reach the symlink's target.
func TestHardlinkToEscapingSymlink(t *testing.T) {
	s := newSandbox(t)
	before := s.snapshot(t)
	h := with(hardlink("h", "s"), func(h *tar.Header) { h.Mode = 0o4777; h.Uid = 4242 })
	if _, err := Apply(s.layer, bytes.NewReader(buildTar(t, symlink("s", s.victim), h))); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	s.assertUnchanged(t, before)
	st := lstat(t, filepath.Join(s.layer, "h"))
	if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Nlink != 2 {
		t.Errorf("h: mode %o nlink %d, want a second name of the symlink", st.Mode, st.Nlink)
	}
	if target, _ := os.Readlink(filepath.Join(s.layer, "h")); target != s.victim {
		t.Errorf("h -> %q, want %q", target, s.victim)
	}
}
