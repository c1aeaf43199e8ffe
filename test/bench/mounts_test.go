package main

import (
	"reflect"
	"testing"
)

func TestMountsUnder(t *testing.T) {
	info := `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
101 22 0:50 / /tmp/berth-bench-1/containerd/root/tmpmounts/containerd-mount1 rw - overlay overlay rw,lowerdir=/x
102 22 0:51 / /tmp/berth-bench-1/containerd/root/tmpmounts/containerd-mount1/nested rw - tmpfs tmpfs rw
103 22 0:52 / /tmp/berth-bench-1/with\040space rw - tmpfs tmpfs rw
104 22 0:53 / /tmp/berth-bench-10/other rw - tmpfs tmpfs rw
105 22 0:54 / /tmp/berth-bench-1 rw - tmpfs tmpfs rw
`
	got := mountsUnder(info, "/tmp/berth-bench-1/")
	want := []string{
		"/tmp/berth-bench-1/containerd/root/tmpmounts/containerd-mount1/nested",
		"/tmp/berth-bench-1/containerd/root/tmpmounts/containerd-mount1",
		"/tmp/berth-bench-1/with space",
		"/tmp/berth-bench-1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsUnder = %q\nwant %q", got, want)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/tab\011x`: "/tab\tx",
		`/back\134`: `/back\`,
		`/plain`:    "/plain",
		`/short\04`: `/short\04`,
	} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}
