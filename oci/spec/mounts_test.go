package spec

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCRIMount(t *testing.T) {
	const (
		private  = runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		hostToC  = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		bidirect = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	)
	podMap := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	podUserns := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: podMap, Gids: podMap}
	for _, tc := range []struct {
		name   string
		userns *runtimeapi.UserNamespace
		m      *runtimeapi.Mount
		want   specs.Mount
		err    string
	}{
		{
			name: "rw private",
			m:    &runtimeapi.Mount{ContainerPath: "/data/", HostPath: "/var/lib/x"},
			want: specs.Mount{Destination: "/data", Type: "bind", Source: "/var/lib/x", Options: []string{"rbind", "rprivate", "rw"}},
		},
		{
			name: "readonly host-to-container",
			m:    &runtimeapi.Mount{ContainerPath: "/etc/cfg", HostPath: "/srv/cfg", Readonly: true, Propagation: hostToC},
			want: specs.Mount{Destination: "/etc/cfg", Type: "bind", Source: "/srv/cfg", Options: []string{"rbind", "rslave", "ro"}},
		},
		{
			name: "bidirectional",
			m:    &runtimeapi.Mount{ContainerPath: "/mnt", HostPath: "/mnt/shared", Propagation: bidirect},
			want: specs.Mount{Destination: "/mnt", Type: "bind", Source: "/mnt/shared", Options: []string{"rbind", "rshared", "rw"}},
		},
		{
			name: "recursive read-only",
			m:    &runtimeapi.Mount{ContainerPath: "/ro", HostPath: "/srv", Readonly: true, RecursiveReadOnly: true},
			want: specs.Mount{Destination: "/ro", Type: "bind", Source: "/srv", Options: []string{"rbind", "rprivate", "ro", "rro"}},
		},
		{
			name: "selinux_relabel adds nothing",
			m:    &runtimeapi.Mount{ContainerPath: "/l", HostPath: "/h", SelinuxRelabel: true},
			want: specs.Mount{Destination: "/l", Type: "bind", Source: "/h", Options: []string{"rbind", "rprivate", "rw"}},
		},
		{
			name: "mount options",
			m:    &runtimeapi.Mount{ContainerPath: "/o", HostPath: "/h", MountOptions: []string{"noexec", "nosuid", "noexec"}},
			want: specs.Mount{Destination: "/o", Type: "bind", Source: "/h", Options: []string{"rbind", "rprivate", "rw", "noexec", "nosuid"}},
		},
		{name: "rro needs readonly", m: &runtimeapi.Mount{ContainerPath: "/r", HostPath: "/h", RecursiveReadOnly: true}, err: "mounts[3].recursive_read_only: requires readonly"},
		{
			name: "rro needs private",
			m:    &runtimeapi.Mount{ContainerPath: "/r", HostPath: "/h", Readonly: true, RecursiveReadOnly: true, Propagation: hostToC},
			err:  "mounts[3].recursive_read_only: requires propagation PROPAGATION_PRIVATE, not PROPAGATION_HOST_TO_CONTAINER",
		},
		{name: "relative container path", m: &runtimeapi.Mount{ContainerPath: "data", HostPath: "/h"}, err: `mounts[3].container_path: "data" is not an absolute path`},
		{name: "empty container path", m: &runtimeapi.Mount{HostPath: "/h"}, err: "mounts[3].container_path: empty"},
		{name: "over root", m: &runtimeapi.Mount{ContainerPath: "/x/..", HostPath: "/h"}, err: "mounts[3].container_path: cannot mount over the container's root"},
		{name: "empty host path", m: &runtimeapi.Mount{ContainerPath: "/x"}, err: "mounts[3].host_path: empty"},
		{name: "relative host path", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "h"}, err: `mounts[3].host_path: "h" is not an absolute path`},
		{name: "NUL host path", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h\x00"}, err: "mounts[3].host_path: contains a NUL byte"},
		{name: "unknown propagation", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", Propagation: 9}, err: "mounts[3].propagation: unknown propagation 9"},
		{name: "data option", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", MountOptions: []string{"nosuid", "mode=777"}}, err: `mounts[3].mount_options[1]: option "mode=777" is not supported`},
		{name: "rw option", m: &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", Readonly: true, MountOptions: []string{"rw"}}, err: `mounts[3].mount_options[0]: option "rw" is not supported`},
		{
			name: "id mapping without a pod user namespace",
			m:    &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", UidMappings: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}},
			err:  "mounts[3].uidMappings: id-mapped mounts need a pod with a user namespace of its own",
		},
		{
			name:   "the pod's mapping: idmapped",
			m:      &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", UidMappings: podMap, GidMappings: podMap},
			userns: podUserns,
			want:   specs.Mount{Destination: "/x", Type: "bind", Source: "/h", Options: []string{"rbind", "rprivate", "rw", "ridmap"}},
		},
		{
			name:   "no mapping in a user namespace pod: not idmapped",
			m:      &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h"},
			userns: podUserns,
			want:   specs.Mount{Destination: "/x", Type: "bind", Source: "/h", Options: []string{"rbind", "rprivate", "rw"}},
		},
		{
			name:   "another uid mapping",
			m:      &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", UidMappings: []*runtimeapi.IDMapping{{HostId: 200000, Length: 65536}}, GidMappings: podMap},
			userns: podUserns,
			err:    "mounts[3].uidMappings: must be the pod's user namespace mapping",
		},
		{
			name:   "gid mapping left out: the pod's",
			m:      &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", UidMappings: podMap},
			userns: podUserns,
			want:   specs.Mount{Destination: "/x", Type: "bind", Source: "/h", Options: []string{"rbind", "rprivate", "rw", "ridmap"}},
		},
		{
			name:   "another gid mapping",
			m:      &runtimeapi.Mount{ContainerPath: "/x", HostPath: "/h", UidMappings: podMap, GidMappings: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}},
			userns: podUserns,
			err:    "mounts[3].gidMappings: must be the pod's user namespace mapping",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := criMount(3, tc.m, tc.userns)
			if wantInvalid(t, err, tc.err) {
				return
			}
			if got.Destination != tc.want.Destination || got.Source != tc.want.Source || got.Type != tc.want.Type || !slices.Equal(got.Options, tc.want.Options) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRootfsPropagation(t *testing.T) {
	m := func(p runtimeapi.MountPropagation) *runtimeapi.Mount { return &runtimeapi.Mount{Propagation: p} }
	for _, tc := range []struct {
		mounts []*runtimeapi.Mount
		want   string
	}{
		{nil, ""},
		{[]*runtimeapi.Mount{m(0)}, ""},
		{[]*runtimeapi.Mount{m(0), m(runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER)}, "rslave"},
		{[]*runtimeapi.Mount{m(runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER), m(runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL)}, "rshared"},
		{[]*runtimeapi.Mount{{Image: &runtimeapi.ImageSpec{Image: "x"}, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}, ""},
	} {
		if got := rootfsPropagation(tc.mounts); got != tc.want {
			t.Errorf("rootfsPropagation(%v) = %q, want %q", tc.mounts, got, tc.want)
		}
	}
}

func destinations(ms []specs.Mount) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Destination
	}
	return out
}

func findMount(ms []specs.Mount, dst string) (specs.Mount, bool) {
	for _, m := range ms {
		if m.Destination == dst {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func TestBuildMounts(t *testing.T) {
	podMounts := []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: "/run/berth/pods/p/hosts", Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: "/run/berth/pods/p/resolv.conf", Options: []string{"rbind", "rprivate", "ro"}},
		{Destination: "/dev/shm", Type: "bind", Source: "/run/berth/pods/p/shm", Options: []string{"rbind", "rprivate", "rw"}},
	}
	for _, tc := range []struct {
		name        string
		privileged  bool
		mounts      []*runtimeapi.Mount
		volumes     []string
		source      func(string) string
		imageMounts map[int]string
		pod         *runtimeapi.PodSandboxConfig
		wantOrder   []string
		check       func(t *testing.T, ms []specs.Mount, vols []Volume)
		err         string
	}{
		{
			name:      "defaults and pod mounts, parents first",
			wantOrder: []string{"/proc", "/dev", "/sys", "/dev/pts", "/dev/mqueue", "/etc/hosts", "/etc/resolv.conf", "/dev/shm", "/sys/fs/cgroup"},
			check: func(t *testing.T, ms []specs.Mount, _ []Volume) {
				for _, d := range []string{"/sys", "/sys/fs/cgroup"} {
					if m, _ := findMount(ms, d); !slices.Contains(m.Options, "ro") {
						t.Errorf("%s not read-only: %v", d, m.Options)
					}
				}
			},
		},
		{
			name:       "privileged sysfs and cgroup rw",
			privileged: true,
			check: func(t *testing.T, ms []specs.Mount, _ []Volume) {
				for _, d := range []string{"/sys", "/sys/fs/cgroup"} {
					if m, _ := findMount(ms, d); !slices.Contains(m.Options, "rw") || slices.Contains(m.Options, "ro") {
						t.Errorf("%s not read-write: %v", d, m.Options)
					}
				}
			},
		},
		{
			name: "request overrides pod mount and default",
			mounts: []*runtimeapi.Mount{
				{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/u/etc-hosts"},
				{ContainerPath: "/dev/mqueue", HostPath: "/srv/mq"},
			},
			check: func(t *testing.T, ms []specs.Mount, _ []Volume) {
				if m, _ := findMount(ms, "/etc/hosts"); m.Source != "/var/lib/kubelet/pods/u/etc-hosts" {
					t.Errorf("/etc/hosts from %s", m.Source)
				}
				if m, _ := findMount(ms, "/dev/mqueue"); m.Type != "bind" {
					t.Errorf("/dev/mqueue is %s", m.Type)
				}
				if n := len(destinations(ms)); n != 9 {
					t.Errorf("%d mounts, want 9", n)
				}
			},
		},
		{
			name: "child request mount after its parent",
			mounts: []*runtimeapi.Mount{
				{ContainerPath: "/data/logs", HostPath: "/srv/logs"},
				{ContainerPath: "/data", HostPath: "/srv/data"},
			},
			check: func(t *testing.T, ms []specs.Mount, _ []Volume) {
				d := destinations(ms)
				if slices.Index(d, "/data") > slices.Index(d, "/data/logs") {
					t.Errorf("order %v", d)
				}
			},
		},
		{
			name: "image volume bound from where the caller mounted it",
			mounts: []*runtimeapi.Mount{
				{ContainerPath: "/data", HostPath: "/srv/data"},
				{ContainerPath: "/models/", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "sha256:abc"}},
			},
			imageMounts: map[int]string{1: "/run/berth/containers/c1/image-volumes/1"},
			check: func(t *testing.T, ms []specs.Mount, _ []Volume) {
				m, ok := findMount(ms, "/models")
				if !ok || m.Source != "/run/berth/containers/c1/image-volumes/1" || m.Type != "bind" ||
					!slices.Equal(m.Options, []string{"rbind", "rprivate", "ro", "nodev"}) {
					t.Errorf("image volume mount %+v", m)
				}
			},
		},
		{
			name:   "image volume not prepared",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/models", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "sha256:abc"}}},
			err:    "mounts[0].image: the image volume was not prepared",
		},
		{
			name:   "image volume must be read-only",
			mounts: []*runtimeapi.Mount{{ContainerPath: "/models", Image: &runtimeapi.ImageSpec{Image: "sha256:abc"}}},
			err:    "mounts[0].readonly: an image volume must be read-only",
		},
		{
			name:    "anonymous volumes reported, shadowed ones skipped",
			mounts:  []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv/data"}},
			volumes: []string{"/var/lib/db/", "/data", "/cache", "/cache/"},
			check: func(t *testing.T, ms []specs.Mount, vols []Volume) {
				want := []Volume{{ContainerPath: "/cache"}, {ContainerPath: "/var/lib/db"}}
				if !slices.Equal(vols, want) {
					t.Errorf("volumes %v, want %v", vols, want)
				}
				if _, ok := findMount(ms, "/cache"); ok {
					t.Error("volume mounted without a VolumeSource")
				}
			},
		},
		{
			name:    "anonymous volumes mounted from VolumeSource",
			volumes: []string{"/var/lib/db"},
			source:  func(p string) string { return "/var/lib/berth/volumes/c1" + p },
			check: func(t *testing.T, ms []specs.Mount, vols []Volume) {
				if vols[0].HostPath != "/var/lib/berth/volumes/c1/var/lib/db" {
					t.Errorf("volume %+v", vols[0])
				}
				m, ok := findMount(ms, "/var/lib/db")
				if !ok || m.Source != vols[0].HostPath || !slices.Equal(m.Options, []string{"rbind", "rprivate", "rw"}) {
					t.Errorf("volume mount %+v", m)
				}
			},
		},
		{
			name:    "anonymous volumes idmapped in a pod with its own user namespace",
			volumes: []string{"/var/lib/db"},
			source:  func(p string) string { return "/var/lib/berth/volumes/c1" + p },
			pod: &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}},
			}}},
			check: func(t *testing.T, ms []specs.Mount, vols []Volume) {
				m, ok := findMount(ms, "/var/lib/db")
				if !ok || !slices.Equal(m.Options, []string{"rbind", "rprivate", "rw", "ridmap"}) {
					t.Errorf("volume mount %+v", m)
				}
			},
		},
		{name: "relative volume", volumes: []string{"data"}, err: "image_config.Volumes[data]: not an absolute path"},
		{name: "root volume", volumes: []string{"/"}, err: "image_config.Volumes[/]: cannot be the root"},
		{name: "dotdot volume", volumes: []string{"/a/../etc"}, err: `image_config.Volumes[/a/../etc]: contains ".."`},
		{name: "bad request mount", mounts: []*runtimeapi.Mount{{ContainerPath: "/ok", HostPath: "/h"}, {ContainerPath: "x", HostPath: "/h"}}, err: "mounts[1].container_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := ocispec.ImageConfig{}
			if tc.volumes != nil {
				img.Volumes = map[string]struct{}{}
				for _, v := range tc.volumes {
					img.Volumes[v] = struct{}{}
				}
			}
			in := Input{
				Container:    &runtimeapi.ContainerConfig{Mounts: tc.mounts},
				Image:        img,
				PodMounts:    podMounts,
				VolumeSource: tc.source,
				ImageMounts:  tc.imageMounts,
				Pod:          tc.pod,
			}
			ms, vols, err := buildMounts(in, tc.privileged)
			if wantInvalid(t, err, tc.err) {
				return
			}
			if tc.wantOrder != nil && !slices.Equal(destinations(ms), tc.wantOrder) {
				t.Errorf("order %v, want %v", destinations(ms), tc.wantOrder)
			}
			for i := range ms {
				for j := i + 1; j < len(ms); j++ {
					if pathDepth(ms[j].Destination) < pathDepth(ms[i].Destination) {
						t.Fatalf("%s before %s", ms[i].Destination, ms[j].Destination)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, ms, vols)
			}
		})
	}
}

func TestBuildMountsBadPodMount(t *testing.T) {
	in := Input{Container: &runtimeapi.ContainerConfig{}, PodMounts: []specs.Mount{{Destination: "etc/hosts"}}}
	_, _, err := buildMounts(in, false)
	wantErr(t, err, `pod mount destination "etc/hosts"`)
}

func TestImageMounts(t *testing.T) {
	img := &runtimeapi.ImageSpec{Image: "registry.example/models:1"}
	for _, tc := range []struct {
		name  string
		mount *runtimeapi.Mount
		want  ImageMount
		err   string
	}{
		{name: "whole image", mount: &runtimeapi.Mount{ContainerPath: "/m/", Readonly: true, Image: img}, want: ImageMount{ContainerPath: "/m"}},
		{name: "sub path cleaned", mount: &runtimeapi.Mount{ContainerPath: "/m", Readonly: true, Image: img, ImageSubPath: "usr//share/./doc/"}, want: ImageMount{ContainerPath: "/m", SubPath: "usr/share/doc"}},
		{name: "sub path dot", mount: &runtimeapi.Mount{ContainerPath: "/m", Readonly: true, Image: img, ImageSubPath: "."}, want: ImageMount{ContainerPath: "/m"}},
		{name: "writable", mount: &runtimeapi.Mount{ContainerPath: "/m", Image: img}, err: "mounts[0].readonly"},
		{name: "absolute sub path", mount: &runtimeapi.Mount{ContainerPath: "/m", Readonly: true, Image: img, ImageSubPath: "/etc"}, err: "mounts[0].image_sub_path"},
		{name: "escaping sub path", mount: &runtimeapi.Mount{ContainerPath: "/m", Readonly: true, Image: img, ImageSubPath: "a/../../etc"}, err: "mounts[0].image_sub_path"},
		{name: "NUL in sub path", mount: &runtimeapi.Mount{ContainerPath: "/m", Readonly: true, Image: img, ImageSubPath: "a\x00b"}, err: "mounts[0].image_sub_path"},
		{name: "host path too", mount: &runtimeapi.Mount{ContainerPath: "/m", HostPath: "/srv", Readonly: true, Image: img}, err: "mounts[0].host_path"},
		{name: "no image name", mount: &runtimeapi.Mount{ContainerPath: "/m", Readonly: true, Image: &runtimeapi.ImageSpec{}}, err: "mounts[0].image.image"},
		{name: "over the root", mount: &runtimeapi.Mount{ContainerPath: "/", Readonly: true, Image: img}, err: "mounts[0].container_path"},
		{name: "id mapped", mount: &runtimeapi.Mount{ContainerPath: "/m", Readonly: true, Image: img, UidMappings: []*runtimeapi.IDMapping{{Length: 1}}}, err: "mounts[0].uidMappings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ImageMounts(&runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{tc.mount}})
			if wantInvalid(t, err, tc.err) {
				return
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("ImageMounts = %+v, want [%+v]", got, tc.want)
			}
		})
	}
	// Mounts without an image are not image volumes.
	got, err := ImageMounts(&runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/a", HostPath: "/b"}}})
	if err != nil || len(got) != 0 {
		t.Errorf("a host mount gave %v, %v", got, err)
	}
}
