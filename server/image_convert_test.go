package server

import (
	"testing"

	"github.com/berth-runtime/berth/images"
)

func TestToCRIImageUser(t *testing.T) {
	cases := []struct {
		user     string
		uid      int64
		hasUID   bool
		username string
	}{
		{"", 0, false, ""},
		{"0", 0, true, ""},
		{"1000:1000", 1000, true, ""},
		{"berth", 0, false, "berth"},
		{"berth:staff", 0, false, "berth"},
		{"1000:staff", 1000, true, ""},
	}
	for _, c := range cases {
		got := toCRIImage(&images.Image{ID: "sha256:x", User: c.user, Size: 5})
		if (got.Uid != nil) != c.hasUID || (c.hasUID && got.Uid.Value != c.uid) || got.Username != c.username {
			t.Errorf("user %q: uid %v username %q", c.user, got.Uid, got.Username)
		}
		if got.Size != 5 || got.Spec.Image != "sha256:x" {
			t.Errorf("fields lost: %+v", got)
		}
	}
}
