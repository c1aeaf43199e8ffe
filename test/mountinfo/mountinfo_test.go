package mountinfo

import (
	"slices"
	"testing"
)

const listing = `22 1 0:21 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /run/x rw - tmpfs tmpfs rw
31 30 0:41 / /run/x/a\040b rw - tmpfs tmpfs rw
32 31 0:42 / /run/x/a\040b/c rw - overlay overlay rw
33 22 0:43 / /run/xy rw - tmpfs tmpfs rw
34 30 0:44 / /run/x/long-name rw - tmpfs tmpfs rw
short line
`

func TestUnder(t *testing.T) {
	got := Under(listing, "/run/x")
	want := []string{"/run/x/a b/c", "/run/x/long-name", "/run/x/a b", "/run/x"}
	if !slices.Equal(got, want) {
		t.Errorf("Under(/run/x) = %q, want %q", got, want)
	}
	if got := Under(listing, "/run/xy/", "/nowhere"); !slices.Equal(got, []string{"/run/xy"}) {
		t.Errorf("Under(/run/xy/) = %q", got)
	}
	if got := Under(listing); len(got) != 0 {
		t.Errorf("Under() = %q", got)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:         "plain",
		`a\040b\011c`:   "a b\tc",
		`back\134slash`: `back\slash`,
		`trailing\04`:   `trailing\04`,
		`not\999octal`:  `not\999octal`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
