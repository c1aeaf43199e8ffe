// Package userdb reads the users and groups of a container image from its
// /etc/passwd and /etc/group.
//
// The root filesystem comes from an untrusted image: /etc, /etc/passwd or
// /etc/group may be symbolic links, absolute or relative, aimed at the
// host's files. Every path is resolved as if the root filesystem were "/"
// (openat2 with RESOLVE_IN_ROOT, or an equivalent walk on kernels without
// it), so a link can only lead to another file of the image. Only regular
// files are read (a FIFO or device could block or never end), and at most
// MaxFileSize bytes of each.
package userdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/spec"
)

// MaxFileSize is how much of /etc/passwd or /etc/group is read. Entries past
// it are not seen: lookups of them fail as if they were absent.
const MaxFileSize = 4 << 20

// Paths of the databases inside the root filesystem.
const (
	PasswdPath = "/etc/passwd"
	GroupPath  = "/etc/group"
)

var _ spec.UserDB = (*DB)(nil)

type user struct {
	name     string
	uid, gid uint32
}

type group struct {
	name    string
	gid     uint32
	members []string
}

// DB holds the parsed entries, in file order. Like libc, a lookup returns
// the first matching entry. A DB is immutable and safe for concurrent use.
type DB struct {
	users       []user
	groups      []group
	byName      map[string]int // first user entry of a name
	byUID       map[uint32]int // first user entry of a uid
	groupByName map[string]int
}

// Open reads <rootfs>/etc/passwd and <rootfs>/etc/group, resolving every
// path component inside rootfs. A missing file (or a missing /etc, or a
// link loop) gives an empty database, as it gives libc no entries; any
// other failure to read, or a file that is not a regular file, is an error.
func Open(rootfs string) (*DB, error) {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("userdb: open root %s: %w", rootfs, err)
	}
	defer root.Close()
	passwd, err := readInRoot(root, PasswdPath)
	if err != nil {
		return nil, fmt.Errorf("userdb: %s in %s: %w", PasswdPath, rootfs, err)
	}
	groupData, err := readInRoot(root, GroupPath)
	if err != nil {
		return nil, fmt.Errorf("userdb: %s in %s: %w", GroupPath, rootfs, err)
	}
	return Parse(passwd, groupData), nil
}

// readInRoot returns up to MaxFileSize bytes of the file at p inside root,
// cut back to the last whole line when the file is longer. A file that does
// not exist gives nil.
func readInRoot(root *os.File, p string) ([]byte, error) {
	h, err := pathrs.OpenatInRoot(root, p)
	if err != nil {
		// As for libc in the container, a path that leads nowhere (a
		// missing file, a non-directory on the way, a link loop) gives no
		// entries.
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil, nil
		}
		return nil, err
	}
	defer h.Close()
	// The handle is O_PATH: fstat it before opening anything that could
	// block on open or read (a FIFO) or never end (a device).
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("not a regular file")
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		data = data[:MaxFileSize]
		// Drop the partial line the cut leaves at the end, unless the cut
		// falls right after a newline.
		if data[len(data)-1] != '\n' {
			i := bytes.LastIndexByte(data, '\n')
			data = data[:i+1]
		}
	}
	return data, nil
}

// Parse builds a DB from the contents of /etc/passwd and /etc/group. It
// never fails: like libc it skips blank lines, comments, NIS compat entries
// ("+" and "-") and malformed lines.
func Parse(passwd, groupFile []byte) *DB {
	db := &DB{
		byName:      map[string]int{},
		byUID:       map[uint32]int{},
		groupByName: map[string]int{},
	}
	eachLine(passwd, func(line string) {
		// name:password:uid:gid:gecos:home:shell
		f := strings.Split(line, ":")
		if len(f) < 4 || !validName(f[0]) {
			return
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			return
		}
		db.users = append(db.users, user{name: f[0], uid: uid, gid: gid})
		i := len(db.users) - 1
		if _, dup := db.byName[f[0]]; !dup {
			db.byName[f[0]] = i
		}
		if _, dup := db.byUID[uid]; !dup {
			db.byUID[uid] = i
		}
	})
	eachLine(groupFile, func(line string) {
		// name:password:gid:member,member
		f := strings.Split(line, ":")
		if len(f) < 3 || !validName(f[0]) {
			return
		}
		gid, ok := parseID(f[2])
		if !ok {
			return
		}
		g := group{name: f[0], gid: gid}
		if len(f) > 3 {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.members = append(g.members, m)
				}
			}
		}
		db.groups = append(db.groups, g)
		if _, dup := db.groupByName[g.name]; !dup {
			db.groupByName[g.name] = len(db.groups) - 1
		}
	})
	return db
}

// eachLine calls fn with every line that may hold an entry: surrounding
// whitespace trimmed, blank lines, comments and NIS compat lines skipped.
func eachLine(data []byte, fn func(line string)) {
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 0, 4096), MaxFileSize+1)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		fn(line)
	}
}

// validName rejects names no lookup could mean: empty ones and ones with
// whitespace or control characters.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// parseID parses a decimal uid or gid. 4294967295 is (uid_t)-1, which no
// entry can own.
func parseID(s string) (uint32, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// LookupUser returns the uid and primary gid of the first passwd entry
// named name, or spec.ErrNoSuchUser.
func (db *DB) LookupUser(name string) (uid, gid uint32, err error) {
	i, ok := db.byName[name]
	if !ok {
		return 0, 0, spec.ErrNoSuchUser
	}
	return db.users[i].uid, db.users[i].gid, nil
}

// LookupGroup returns the gid of the first group entry named name, or
// spec.ErrNoSuchGroup.
func (db *DB) LookupGroup(name string) (gid uint32, err error) {
	i, ok := db.groupByName[name]
	if !ok {
		return 0, spec.ErrNoSuchGroup
	}
	return db.groups[i].gid, nil
}

// LookupUid returns the primary gid of the first passwd entry with uid.
func (db *DB) LookupUid(uid uint32) (gid uint32, found bool) {
	i, ok := db.byUID[uid]
	if !ok {
		return 0, false
	}
	return db.users[i].gid, true
}

// SupplementaryGroups returns, in file order and without repeats, the gids
// of the groups that list user as a member. An empty user is the name of
// the first passwd entry with uid; a uid without an entry has no
// supplementary groups. The primary group is not added: the caller has it.
func (db *DB) SupplementaryGroups(name string, uid uint32) []uint32 {
	if name == "" {
		i, ok := db.byUID[uid]
		if !ok {
			return nil
		}
		name = db.users[i].name
	}
	var gids []uint32
	seen := map[uint32]bool{}
	for _, g := range db.groups {
		if seen[g.gid] {
			continue
		}
		for _, m := range g.members {
			if m == name {
				seen[g.gid] = true
				gids = append(gids, g.gid)
				break
			}
		}
	}
	return gids
}
