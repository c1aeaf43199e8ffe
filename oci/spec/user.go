package spec

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UserDB reads the image's /etc/passwd and /etc/group. The caller opens
// them inside the container's root without following links out of it.
type UserDB interface {
	// LookupUser returns the uid and primary gid of a user name, or an
	// error matching ErrNoSuchUser.
	LookupUser(name string) (uid, gid uint32, err error)
	// LookupGroup returns the gid of a group name, or an error matching
	// ErrNoSuchGroup.
	LookupGroup(name string) (gid uint32, err error)
	// LookupUid returns the primary gid /etc/passwd gives a uid.
	LookupUid(uid uint32) (gid uint32, found bool)
	// SupplementaryGroups returns the gids of the /etc/group entries that
	// list the user as a member. user may be empty: the implementation then
	// finds the name for uid in /etc/passwd.
	SupplementaryGroups(user string, uid uint32) []uint32
}

// noUsers is the UserDB of an image without /etc/passwd or /etc/group.
type noUsers struct{}

func (noUsers) LookupUser(string) (uint32, uint32, error)   { return 0, 0, ErrNoSuchUser }
func (noUsers) LookupGroup(string) (uint32, error)          { return 0, ErrNoSuchGroup }
func (noUsers) LookupUid(uint32) (uint32, bool)             { return 0, false }
func (noUsers) SupplementaryGroups(string, uint32) []uint32 { return nil }

const scField = "linux.security_context."

// resolveUser finds the container's uid, gid and supplementary groups. The
// request's run_as_user or run_as_username wins over the image's User; a
// uid alone takes its primary gid from /etc/passwd, else 0; run_as_group
// overrides the gid. As in containerd, a user from the request does not
// pick up the group part of the image's User.
func resolveUser(sc *runtimeapi.LinuxContainerSecurityContext, imageUser string, db UserDB) (User, error) {
	if db == nil {
		db = noUsers{}
	}
	var (
		uid, gid uint32
		name     string
		err      error
	)
	switch {
	case sc.GetRunAsUser() != nil && sc.GetRunAsUsername() != "":
		return User{}, fieldErr(scField+"run_as_username", "only one of run_as_user and run_as_username may be set")
	case sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "":
		return User{}, fieldErr(scField+"run_as_group", "set without run_as_user or run_as_username")
	case sc.GetRunAsUser() != nil:
		if uid, err = checkID(scField+"run_as_user", sc.GetRunAsUser().GetValue()); err != nil {
			return User{}, err
		}
		gid, _ = db.LookupUid(uid)
	case sc.GetRunAsUsername() != "":
		name = sc.GetRunAsUsername()
		if uid, gid, err = db.LookupUser(name); err != nil {
			return User{}, userLookupErr(scField+"run_as_username", "user", name, err)
		}
	default:
		if uid, gid, name, err = imageUserIDs(imageUser, db); err != nil {
			return User{}, err
		}
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if gid, err = checkID(scField+"run_as_group", g.GetValue()); err != nil {
			return User{}, err
		}
	}

	groups := []uint32{gid}
	switch p := sc.GetSupplementalGroupsPolicy(); p {
	case runtimeapi.SupplementalGroupsPolicy_Merge:
		groups = append(groups, db.SupplementaryGroups(name, uid)...)
	case runtimeapi.SupplementalGroupsPolicy_Strict:
	default:
		return User{}, fieldErr(scField+"supplemental_groups_policy", "unknown policy %d", p)
	}
	for i, g := range sc.GetSupplementalGroups() {
		id, err := checkID(indexed(scField+"supplemental_groups", i), g)
		if err != nil {
			return User{}, err
		}
		groups = append(groups, id)
	}
	// The kernel keeps supplementary groups sorted; so does the status.
	slices.Sort(groups)
	return User{UID: uid, GID: gid, AdditionalGids: slices.Compact(groups)}, nil
}

// imageUserIDs resolves the image config's User: "", "uid", "uid:gid",
// "name", "name:group" or a mix of names and numbers. An empty user part
// means root.
func imageUserIDs(s string, db UserDB) (uid, gid uint32, name string, err error) {
	const field = "image_config.User"
	userPart, groupPart, hasGroup := strings.Cut(s, ":")
	switch {
	case userPart == "":
		gid, _ = db.LookupUid(0)
	case isNumeric(userPart):
		if uid, err = parseID(userPart); err != nil {
			return 0, 0, "", fieldErr(field, "uid %q: %v", userPart, err)
		}
		gid, _ = db.LookupUid(uid)
	default:
		name = userPart
		if uid, gid, err = db.LookupUser(name); err != nil {
			return 0, 0, "", userLookupErr(field, "user", name, err)
		}
	}
	if !hasGroup || groupPart == "" {
		return uid, gid, name, nil
	}
	if isNumeric(groupPart) {
		if gid, err = parseID(groupPart); err != nil {
			return 0, 0, "", fieldErr(field, "gid %q: %v", groupPart, err)
		}
		return uid, gid, name, nil
	}
	if gid, err = db.LookupGroup(groupPart); err != nil {
		return 0, 0, "", userLookupErr(field, "group", groupPart, err)
	}
	return uid, gid, name, nil
}

// userLookupErr names the field when the name is absent and keeps other
// failures (reading the image's files) as they are.
func userLookupErr(field, kind, name string, err error) error {
	if errors.Is(err, ErrNoSuchUser) || errors.Is(err, ErrNoSuchGroup) {
		return fieldErr(field, "%s %q not found in the image", kind, name)
	}
	return err
}

// checkID validates a uid or gid from the request. 4294967295 is (uid_t)-1,
// which the kernel treats as "unchanged".
func checkID(field string, v int64) (uint32, error) {
	if v < 0 || v >= math.MaxUint32 {
		return 0, fieldErr(field, "%d is out of range [0, %d]", v, uint32(math.MaxUint32-1))
	}
	return uint32(v), nil
}

func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == math.MaxUint32 {
		return 0, errors.New("out of range")
	}
	return uint32(v), nil
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
