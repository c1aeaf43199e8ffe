package spec

import (
	"errors"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestBuildDevices(t *testing.T) {
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	allow := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: access}
	}
	dev := func(p string) *runtimeapi.Device { return &runtimeapi.Device{HostPath: p, ContainerPath: p} }

	for _, tc := range []struct {
		name       string
		reqs       []*runtimeapi.Device
		privileged bool
		noFuncs    bool
		wantPaths  []string
		wantRules  []specs.LinuxDeviceCgroup
		check      func(t *testing.T, ds []specs.LinuxDevice)
		err        string
		notInvalid bool
	}{
		{name: "none", wantRules: []specs.LinuxDeviceCgroup{denyAll}},
		{
			name:      "one device default permissions",
			reqs:      []*runtimeapi.Device{dev("/dev/fuse")},
			wantPaths: []string{"/dev/fuse"},
			wantRules: []specs.LinuxDeviceCgroup{denyAll, allow("c", 10, 229, "rwm")},
		},
		{
			name:      "renamed block device read-only",
			reqs:      []*runtimeapi.Device{{HostPath: "/dev/sda", ContainerPath: "/dev/xvda", Permissions: "rr"}},
			wantPaths: []string{"/dev/xvda"},
			wantRules: []specs.LinuxDeviceCgroup{denyAll, allow("b", 8, 0, "r")},
			check: func(t *testing.T, ds []specs.LinuxDevice) {
				d := ds[0]
				if d.Type != "b" || d.Major != 8 || d.Minor != 0 || *d.FileMode != 0o660 || *d.GID != 6 || *d.UID != 0 {
					t.Errorf("device %+v", d)
				}
			},
		},
		{
			name:      "directory expands",
			reqs:      []*runtimeapi.Device{{HostPath: "/dev/snd", ContainerPath: "/dev/sound", Permissions: "rw"}},
			wantPaths: []string{"/dev/sound/ctl", "/dev/sound/pcm"},
			wantRules: []specs.LinuxDeviceCgroup{denyAll, allow("c", 116, 3, "rw"), allow("c", 116, 2, "rw")},
		},
		{
			name:       "privileged gets host devices and allow-all",
			privileged: true,
			reqs:       []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "r"}},
			wantPaths:  []string{"/dev/fuse", "/dev/null", "/dev/sda", "/dev/snd/ctl", "/dev/snd/pcm"},
			wantRules:  []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
		},
		{name: "bad permissions", reqs: []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rx"}}, err: `devices[0].permissions: "rx": only r, w and m are allowed`},
		{name: "missing host device", reqs: []*runtimeapi.Device{dev("/dev/fuse"), dev("/dev/nope")}, err: "devices[1].host_path: no such file or directory"},
		{name: "not a device", reqs: []*runtimeapi.Device{dev("/dev/log")}, err: "devices[0].host_path: /dev/log is not a device"},
		{name: "relative host path", reqs: []*runtimeapi.Device{{HostPath: "fuse", ContainerPath: "/dev/fuse"}}, err: `devices[0].host_path: "fuse" is not an absolute path`},
		{name: "relative container path", reqs: []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "fuse"}}, err: `devices[0].container_path: "fuse" is not an absolute path`},
		{name: "no lookup function", noFuncs: true, reqs: []*runtimeapi.Device{dev("/dev/fuse")}, err: "no way to look up host devices", notInvalid: true},
		{name: "no list function", noFuncs: true, privileged: true, err: "no way to list host devices", notInvalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, list := fakeDeviceInfo, fakeListDevices
			if tc.noFuncs {
				info, list = nil, nil
			}
			ds, rules, err := buildDevices(tc.reqs, tc.privileged, info, list)
			if tc.notInvalid {
				wantErr(t, err, tc.err)
				if errors.Is(err, ErrInvalid) {
					t.Fatal("caller error reported as a request error")
				}
				return
			}
			if wantInvalid(t, err, tc.err) {
				return
			}
			var paths []string
			for _, d := range ds {
				paths = append(paths, d.Path)
			}
			slices.Sort(paths)
			if !slices.Equal(paths, tc.wantPaths) {
				t.Errorf("devices %v, want %v", paths, tc.wantPaths)
			}
			if len(rules) != len(tc.wantRules) {
				t.Fatalf("rules %+v, want %+v", rules, tc.wantRules)
			}
			for i, r := range rules {
				w := tc.wantRules[i]
				if r.Allow != w.Allow || r.Type != w.Type || r.Access != w.Access || !eqPtr(r.Major, w.Major) || !eqPtr(r.Minor, w.Minor) {
					t.Errorf("rule %d = %+v, want %+v", i, r, w)
				}
			}
			if tc.check != nil {
				tc.check(t, ds)
			}
		})
	}
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
