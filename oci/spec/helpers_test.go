package spec

import (
	"errors"
	"os"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeUsers is an image's /etc/passwd and /etc/group.
type fakeUsers struct {
	users   map[string][2]uint32 // name -> uid, gid
	groups  map[string]uint32    // name -> gid
	members map[uint32][]string  // gid -> member names
	err     error                // returned by every lookup when set
}

func (f fakeUsers) LookupUser(name string) (uint32, uint32, error) {
	if f.err != nil {
		return 0, 0, f.err
	}
	u, ok := f.users[name]
	if !ok {
		return 0, 0, ErrNoSuchUser
	}
	return u[0], u[1], nil
}

func (f fakeUsers) LookupGroup(name string) (uint32, error) {
	if f.err != nil {
		return 0, f.err
	}
	g, ok := f.groups[name]
	if !ok {
		return 0, ErrNoSuchGroup
	}
	return g, nil
}

func (f fakeUsers) LookupUid(uid uint32) (uint32, bool) {
	for _, u := range f.users {
		if u[0] == uid {
			return u[1], true
		}
	}
	return 0, false
}

func (f fakeUsers) SupplementaryGroups(user string, uid uint32) []uint32 {
	if user == "" {
		for n, u := range f.users {
			if u[0] == uid {
				user = n
			}
		}
	}
	var out []uint32
	for gid, names := range f.members {
		for _, n := range names {
			if n == user {
				out = append(out, gid)
			}
		}
	}
	return out
}

// testUsers mirrors cri-tools' test images: root, a user defined in the
// image with a group listing it, and nobody.
var testUsers = fakeUsers{
	users: map[string][2]uint32{
		"root":                  {0, 0},
		"user-defined-in-image": {1000, 50000},
		"nobody":                {65534, 65534},
	},
	groups: map[string]uint32{
		"root":                   0,
		"group-defined-in-image": 50000,
		"wheel":                  10,
		"nogroup":                65534,
	},
	members: map[uint32][]string{
		50000: {"user-defined-in-image"},
		10:    {"root", "user-defined-in-image"},
	},
}

// fakeDevices is a host /dev.
var fakeDevices = map[string]HostDevice{
	"/dev/null":    {Path: "/dev/null", Type: 'c', Major: 1, Minor: 3, Mode: 0o666},
	"/dev/fuse":    {Path: "/dev/fuse", Type: 'c', Major: 10, Minor: 229, Mode: 0o666},
	"/dev/sda":     {Path: "/dev/sda", Type: 'b', Major: 8, Minor: 0, Mode: 0o660, GID: 6},
	"/dev/snd":     {Path: "/dev/snd", Mode: os.ModeDir | 0o755},
	"/dev/snd/pcm": {Path: "/dev/snd/pcm", Type: 'c', Major: 116, Minor: 2, Mode: 0o660, GID: 29},
	"/dev/snd/ctl": {Path: "/dev/snd/ctl", Type: 'c', Major: 116, Minor: 3, Mode: 0o660, GID: 29},
	"/dev/pts/0":   {Path: "/dev/pts/0", Type: 'c', Major: 136, Minor: 0, Mode: 0o620},
	"/dev/console": {Path: "/dev/console", Type: 'c', Major: 5, Minor: 1, Mode: 0o600},
	"/dev/log":     {Path: "/dev/log", Mode: os.ModeSocket | 0o666},
}

var errNoDevice = errors.New("no such file or directory")

func fakeDeviceInfo(p string) (HostDevice, error) {
	d, ok := fakeDevices[p]
	if !ok {
		return HostDevice{}, errNoDevice
	}
	return d, nil
}

func fakeListDevices(dir string) ([]HostDevice, error) {
	var out []HostDevice
	for _, p := range []string{"/dev/console", "/dev/fuse", "/dev/log", "/dev/null", "/dev/pts/0", "/dev/sda", "/dev/snd/ctl", "/dev/snd/pcm"} {
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, fakeDevices[p])
		}
	}
	return out, nil
}

// hostCaps is the bounding set of root on the target machine: everything
// but CAP_SYS_RESOURCE.
var hostCaps = func() []string {
	var out []string
	for _, c := range knownCapabilities {
		if c != "CAP_SYS_RESOURCE" {
			out = append(out, c)
		}
	}
	return out
}()

// wantErr checks err against an expected field-error prefix; "" means no
// error.
func wantErr(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return false
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q, want prefix %q", err, want)
	}
	return true
}

// wantInvalid is wantErr plus a check that the error is a request error.
func wantInvalid(t *testing.T, err error, want string) bool {
	t.Helper()
	if !wantErr(t, err, want) {
		return false
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %q does not match ErrInvalid", err)
	}
	return true
}

func int64v(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
