package images

import "testing"

func TestParseRef(t *testing.T) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	cases := []struct{ in, repo, tag, digest, str string }{
		{"busybox", "docker.io/library/busybox", "latest", "", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox", "1.36", "", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox", "latest", "", "docker.io/library/busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox", "latest", "", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox", "docker.io/library/busybox", "latest", "", "docker.io/library/busybox:latest"},
		{"user/app:v1", "docker.io/user/app", "v1", "", "docker.io/user/app:v1"},
		{"quay.io/org/app", "quay.io/org/app", "latest", "", "quay.io/org/app:latest"},
		{"localhost:5000/app:dev", "localhost:5000/app", "dev", "", "localhost:5000/app:dev"},
		{"127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c", "latest", "", "127.0.0.1:5000/a/b/c:latest"},
		{"busybox@" + d, "docker.io/library/busybox", "", d, "docker.io/library/busybox@" + d},
		{"busybox:1.36@" + d, "docker.io/library/busybox", "1.36", d, "docker.io/library/busybox@" + d},
	}
	for _, c := range cases {
		r, err := ParseRef(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if r.Repo != c.repo || r.Tag != c.tag || r.Digest != c.digest || r.String() != c.str {
			t.Errorf("%s: got %+v (%s)", c.in, r, r.String())
		}
	}
	for _, bad := range []string{"", "library/BusyBox", "busybox@sha256:xyz", "a b", "busybox:", ":tag", "http://docker.io/busybox"} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIsImageID(t *testing.T) {
	full := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, s := range []string{full, "sha256:" + full, "0123456789ab"} {
		if _, ok := isImageID(s); !ok {
			t.Errorf("%s not taken as an ID", s)
		}
	}
	for _, s := range []string{"busybox", "0123456789a", "sha256:zz23456789abcdef", full + "0"} {
		if _, ok := isImageID(s); ok {
			t.Errorf("%s taken as an ID", s)
		}
	}
}
