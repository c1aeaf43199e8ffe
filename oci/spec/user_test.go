package spec

import (
	"errors"
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestResolveUser(t *testing.T) {
	strict := runtimeapi.SupplementalGroupsPolicy_Strict
	type sc = runtimeapi.LinuxContainerSecurityContext
	for _, tc := range []struct {
		name      string
		sc        *sc
		imageUser string
		db        UserDB
		want      User
		err       string
	}{
		{name: "default root", want: User{0, 0, []uint32{0, 10}}},
		{name: "root without passwd", db: nil, want: User{0, 0, []uint32{0}}},
		{name: "image name", imageUser: "user-defined-in-image", want: User{1000, 50000, []uint32{10, 50000}}},
		{name: "image uid from passwd", imageUser: "1000", want: User{1000, 50000, []uint32{10, 50000}}},
		{name: "image uid not in passwd", imageUser: "4242", want: User{4242, 0, []uint32{0}}},
		{name: "image uid:gid", imageUser: "1000:7", want: User{1000, 7, []uint32{7, 10, 50000}}},
		{name: "image name:group", imageUser: "nobody:wheel", want: User{65534, 10, []uint32{10}}},
		{name: "image uid:group", imageUser: "4242:nogroup", want: User{4242, 65534, []uint32{65534}}},
		{name: "image :gid", imageUser: ":7", want: User{0, 7, []uint32{7, 10}}},
		{name: "image name trailing colon", imageUser: "nobody:", want: User{65534, 65534, []uint32{65534}}},
		{name: "image unknown user", imageUser: "ghost", err: `image_config.User: user "ghost" not found in the image`},
		{name: "image unknown group", imageUser: "nobody:ghosts", err: `image_config.User: group "ghosts" not found in the image`},
		{name: "image uid out of range", imageUser: "4294967295", err: `image_config.User: uid "4294967295": out of range`},
		{
			name: "run_as_user wins over image", imageUser: "nobody",
			sc:   &sc{RunAsUser: int64v(1000)},
			want: User{1000, 50000, []uint32{10, 50000}},
		},
		{name: "run_as_user unknown uid", sc: &sc{RunAsUser: int64v(2000)}, want: User{2000, 0, []uint32{0}}},
		{name: "run_as_username", sc: &sc{RunAsUsername: "nobody"}, want: User{65534, 65534, []uint32{65534}}},
		{
			name: "run_as_username unknown",
			sc:   &sc{RunAsUsername: "x"},
			err:  `linux.security_context.run_as_username: user "x" not found in the image`,
		},
		{
			name: "run_as_group overrides gid, keeps image groups (Merge)",
			sc:   &sc{RunAsUser: int64v(1000), RunAsGroup: int64v(3000), SupplementalGroups: []int64{4000}},
			want: User{1000, 3000, []uint32{10, 3000, 4000, 50000}},
		},
		{
			name: "Strict drops image groups",
			sc:   &sc{RunAsUser: int64v(1000), RunAsGroup: int64v(3000), SupplementalGroups: []int64{4000}, SupplementalGroupsPolicy: strict},
			want: User{1000, 3000, []uint32{3000, 4000}},
		},
		{
			name: "supplemental groups deduplicated and sorted",
			sc:   &sc{RunAsUsername: "nobody", SupplementalGroups: []int64{9, 65534, 9, 1}},
			want: User{65534, 65534, []uint32{1, 9, 65534}},
		},
		{
			name: "both user fields",
			sc:   &sc{RunAsUser: int64v(1), RunAsUsername: "nobody"},
			err:  "linux.security_context.run_as_username: only one of run_as_user and run_as_username may be set",
		},
		{
			name: "group without user",
			sc:   &sc{RunAsGroup: int64v(5)},
			err:  "linux.security_context.run_as_group: set without run_as_user or run_as_username",
		},
		{name: "negative uid", sc: &sc{RunAsUser: int64v(-1)}, err: "linux.security_context.run_as_user: -1 is out of range"},
		{name: "uid -1 as unsigned", sc: &sc{RunAsUser: int64v(4294967295)}, err: "linux.security_context.run_as_user: 4294967295 is out of range"},
		{name: "bad gid", sc: &sc{RunAsUser: int64v(1), RunAsGroup: int64v(1 << 40)}, err: "linux.security_context.run_as_group:"},
		{
			name: "bad supplemental group",
			sc:   &sc{SupplementalGroups: []int64{1, -5}},
			err:  "linux.security_context.supplemental_groups[1]: -5 is out of range",
		},
		{
			name: "unknown policy",
			sc:   &sc{SupplementalGroupsPolicy: 7},
			err:  "linux.security_context.supplemental_groups_policy: unknown policy 7",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.db
			if db == nil && tc.name != "root without passwd" {
				db = testUsers
			}
			got, err := resolveUser(tc.sc, tc.imageUser, db)
			if wantInvalid(t, err, tc.err) {
				return
			}
			if got.UID != tc.want.UID || got.GID != tc.want.GID || !slices.Equal(got.AdditionalGids, tc.want.AdditionalGids) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolveUserReadError(t *testing.T) {
	ioErr := errors.New("read /etc/passwd: input/output error")
	_, err := resolveUser(&runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "x"}, "", fakeUsers{err: ioErr})
	if !errors.Is(err, ioErr) || errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want the read error, not a request error", err)
	}
}

func TestUserCRI(t *testing.T) {
	got := User{UID: 1000, GID: 3000, AdditionalGids: []uint32{3000, 4000}}.CRI().GetLinux()
	if got.GetUid() != 1000 || got.GetGid() != 3000 || !slices.Equal(got.GetSupplementalGroups(), []int64{3000, 4000}) {
		t.Fatalf("got %v", got)
	}
}
