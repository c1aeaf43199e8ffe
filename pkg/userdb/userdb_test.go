package userdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-runtime/berth/oci/spec"
)

const passwd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
   # an indented comment

nginx:x:101:101:nginx user:/nonexistent:/bin/false
alice:x:1000:1000::/home/alice:/bin/sh
bob:x:1001:1002
alice:x:2000:2000:second alice, ignored:/:/bin/sh
dup:x:1000:3000:same uid as alice:/:/bin/sh
+nisuser::::::
-nisuser2::::::
broken:x:notanumber:1:::
short:x:5
neg:x:-1:1:::
big:x:4294967295:1:::
huge:x:4294967296:1:::
maxok:x:4294967294:7:::
:x:77:77:::
crlf:x:1234:1234:::/bin/sh` + "\r\n" + `spaced name:x:1235:1235:::
last:x:3000:3000:::/bin/sh`

const groupFile = `root:x:0:
daemon:x:1:
# comment
users:x:100:alice,bob
nginx:x:101:
wheel:x:10: alice , ,bob,
alice:x:1000:
empty::500
bad:x:nope:alice
short:x
users:x:999:alice
again:x:100:alice
video:x:44:carol,alice`

func TestParse(t *testing.T) {
	db := Parse([]byte(passwd), []byte(groupFile))

	users := []struct {
		name     string
		uid, gid uint32
	}{
		{"root", 0, 0},
		{"daemon", 1, 1},
		{"nginx", 101, 101},
		{"alice", 1000, 1000}, // the first of two entries
		{"bob", 1001, 1002},   // no gecos, home or shell
		{"dup", 1000, 3000},
		{"maxok", 4294967294, 7},
		{"crlf", 1234, 1234},
		{"last", 3000, 3000}, // no trailing newline
	}
	for _, u := range users {
		uid, gid, err := db.LookupUser(u.name)
		if err != nil || uid != u.uid || gid != u.gid {
			t.Errorf("LookupUser(%q) = %d, %d, %v; want %d, %d", u.name, uid, gid, err, u.uid, u.gid)
		}
	}
	for _, name := range []string{"", "nisuser", "+nisuser", "nisuser2", "broken", "short", "neg", "big", "huge", "spaced name", "spaced", "# a comment", "nobody"} {
		if _, _, err := db.LookupUser(name); !errors.Is(err, spec.ErrNoSuchUser) {
			t.Errorf("LookupUser(%q): err = %v, want ErrNoSuchUser", name, err)
		}
	}

	uids := []struct {
		uid   uint32
		gid   uint32
		found bool
	}{
		{0, 0, true},
		{1000, 1000, true}, // alice comes before dup
		{2000, 2000, true},
		{77, 0, false}, // entry without a name
		{4294967295, 0, false},
		{42, 0, false},
	}
	for _, c := range uids {
		gid, found := db.LookupUid(c.uid)
		if gid != c.gid || found != c.found {
			t.Errorf("LookupUid(%d) = %d, %v; want %d, %v", c.uid, gid, found, c.gid, c.found)
		}
	}

	groups := map[string]uint32{"root": 0, "daemon": 1, "users": 100, "nginx": 101, "wheel": 10, "alice": 1000, "empty": 500, "again": 100, "video": 44}
	for name, want := range groups {
		gid, err := db.LookupGroup(name)
		if err != nil || gid != want {
			t.Errorf("LookupGroup(%q) = %d, %v; want %d", name, gid, err, want)
		}
	}
	for _, name := range []string{"", "bad", "short", "nogroup"} {
		if _, err := db.LookupGroup(name); !errors.Is(err, spec.ErrNoSuchGroup) {
			t.Errorf("LookupGroup(%q): err = %v, want ErrNoSuchGroup", name, err)
		}
	}

	supp := []struct {
		name string
		uid  uint32
		want []uint32
	}{
		{"alice", 0, []uint32{100, 10, 999, 44}}, // file order, 100 once; "bad" is malformed
		{"bob", 0, []uint32{100, 10}},
		{"", 1001, []uint32{100, 10}}, // bob by uid
		{"", 1000, []uint32{100, 10, 999, 44}},
		{"carol", 0, []uint32{44}}, // a member without a passwd entry
		{"root", 0, nil},
		{"", 4242, nil},
	}
	for _, c := range supp {
		if got := db.SupplementaryGroups(c.name, c.uid); !slices.Equal(got, c.want) {
			t.Errorf("SupplementaryGroups(%q, %d) = %v, want %v", c.name, c.uid, got, c.want)
		}
	}
}

func TestParseEmpty(t *testing.T) {
	db := Parse(nil, nil)
	if _, _, err := db.LookupUser("root"); !errors.Is(err, spec.ErrNoSuchUser) {
		t.Fatal(err)
	}
	if _, err := db.LookupGroup("root"); !errors.Is(err, spec.ErrNoSuchGroup) {
		t.Fatal(err)
	}
	if _, found := db.LookupUid(0); found {
		t.Fatal("uid 0 found")
	}
	if g := db.SupplementaryGroups("", 0); g != nil {
		t.Fatal(g)
	}
}

// mkroot makes a root filesystem under a fresh temp dir, next to a decoy
// /etc outside it, and returns both.
func mkroot(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "rootfs")
	outside = filepath.Join(base, "etc")
	for _, d := range []string{root, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(outside, "passwd"), "decoy:x:666:666:::\n")
	write(t, filepath.Join(outside, "group"), "decoy:x:666:alice\n")
	return root, outside
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	root, _ := mkroot(t)
	write(t, filepath.Join(root, "etc/passwd"), passwd)
	write(t, filepath.Join(root, "etc/group"), groupFile)
	db, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid, err := db.LookupUser("nginx"); err != nil || uid != 101 || gid != 101 {
		t.Fatalf("nginx: %d %d %v", uid, gid, err)
	}
	if gid, err := db.LookupGroup("wheel"); err != nil || gid != 10 {
		t.Fatalf("wheel: %d %v", gid, err)
	}
}

func TestOpenMissing(t *testing.T) {
	cases := map[string]func(root string){
		"no etc":       func(string) {},
		"empty etc":    func(root string) { os.Mkdir(filepath.Join(root, "etc"), 0o755) },
		"etc is file":  func(root string) { os.WriteFile(filepath.Join(root, "etc"), nil, 0o644) },
		"dangling":     func(root string) { os.Symlink("/nowhere/passwd", filepath.Join(root, "etc")) },
		"only passwd":  func(root string) { write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:::\n") },
		"only group":   func(root string) { write(t, filepath.Join(root, "etc/group"), "root:x:0:\n") },
		"empty passwd": func(root string) { write(t, filepath.Join(root, "etc/passwd"), "") },
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			root, _ := mkroot(t)
			setup(root)
			db, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			_, _, uerr := db.LookupUser("root")
			_, gerr := db.LookupGroup("root")
			switch name {
			case "only passwd":
				if uerr != nil || !errors.Is(gerr, spec.ErrNoSuchGroup) {
					t.Fatal(uerr, gerr)
				}
			case "only group":
				if gerr != nil || !errors.Is(uerr, spec.ErrNoSuchUser) {
					t.Fatal(uerr, gerr)
				}
			default:
				if !errors.Is(uerr, spec.ErrNoSuchUser) || !errors.Is(gerr, spec.ErrNoSuchGroup) {
					t.Fatal(uerr, gerr)
				}
			}
		})
	}
}

func TestOpenNoRoot(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("no error for a missing root")
	}
}

func TestOpenNotRegular(t *testing.T) {
	root, _ := mkroot(t)
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A FIFO would block a plain open forever.
	if err := syscall.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v", err)
	}
	os.Remove(filepath.Join(root, "etc/passwd"))
	if err := os.Mkdir(filepath.Join(root, "etc/passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err == nil {
		t.Fatal("a directory was accepted")
	}
}

func TestOpenHugeFileCapped(t *testing.T) {
	root, _ := mkroot(t)
	var b strings.Builder
	b.WriteString("first:x:1:1:::\n")
	for i := 0; b.Len() < MaxFileSize-100; i++ {
		fmt.Fprintf(&b, "user%d:x:%d:%d:padding padding padding:/home:/bin/sh\n", i, 10000+i, 10000+i)
	}
	// This entry straddles the cap: a partial line must not become a
	// wrong entry ("straddle" with a truncated uid).
	for b.Len() < MaxFileSize-10 {
		b.WriteString("#\n")
	}
	b.WriteString("straddle:x:123456789:1:::\n")
	b.WriteString("beyond:x:7:7:::\n")
	for i := 0; i < 1000; i++ {
		b.WriteString("more:x:8:8:::\n")
	}
	write(t, filepath.Join(root, "etc/passwd"), b.String())
	db, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.LookupUser("first"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"straddle", "beyond", "more"} {
		if _, _, err := db.LookupUser(name); !errors.Is(err, spec.ErrNoSuchUser) {
			t.Errorf("%s: err = %v, want ErrNoSuchUser", name, err)
		}
	}
}

// Every way an image can point /etc/passwd or /etc/group outside its root
// resolves inside it instead: the decoy next to the root is never read.
func TestOpenSymlinkEscapes(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, root, outside string)
		// want is the user the DB must see; "" means none.
		want string
	}{
		{
			name: "etc -> absolute outside dir",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, outside, filepath.Join(root, "etc"))
			},
		},
		{
			name: "etc -> /etc",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, "/etc", filepath.Join(root, "etc"))
			},
		},
		{
			name: "passwd -> /etc/passwd",
			setup: func(t *testing.T, root, outside string) {
				// Inside the root this names itself: a loop, no entries.
				// Followed from the host it is the host's passwd.
				symlink(t, "/etc/passwd", filepath.Join(root, "etc/passwd"))
				symlink(t, "/etc/group", filepath.Join(root, "etc/group"))
			},
		},
		{
			name: "passwd -> /etc/shadow",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, "/etc/shadow", filepath.Join(root, "etc/passwd"))
				write(t, filepath.Join(root, "etc/shadow"), "inside:x:5:5:::\n")
				write(t, filepath.Join(root, "etc/group"), "inside:x:5:inside\n")
			},
			want: "inside",
		},
		{
			name: "passwd -> /etc/passwd resolves to the image's own copy",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, "/etc/passwd.real", filepath.Join(root, "etc/passwd"))
				symlink(t, "/etc/group.real", filepath.Join(root, "etc/group"))
				write(t, filepath.Join(root, "etc/passwd.real"), "inside:x:5:5:::\n")
				write(t, filepath.Join(root, "etc/group.real"), "inside:x:5:inside\n")
			},
			want: "inside",
		},
		{
			name: "passwd -> absolute host path of the decoy",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, filepath.Join(outside, "passwd"), filepath.Join(root, "etc/passwd"))
				symlink(t, filepath.Join(outside, "group"), filepath.Join(root, "etc/group"))
			},
		},
		{
			name: "passwd -> ../../../etc/passwd",
			setup: func(t *testing.T, root, outside string) {
				symlink(t, "../../../etc/passwd", filepath.Join(root, "etc/passwd"))
				symlink(t, "../../../etc/group", filepath.Join(root, "etc/group"))
			},
		},
		{
			name: "passwd -> ../../etc/passwd, the decoy on a plain open",
			setup: func(t *testing.T, root, outside string) {
				// rootfs/etc/passwd -> ../../etc/passwd is base/etc/passwd,
				// the decoy, when followed from the host.
				symlink(t, "../../etc/passwd", filepath.Join(root, "etc/passwd"))
				symlink(t, "../../etc/group", filepath.Join(root, "etc/group"))
			},
		},
		{
			name: "relative escape through a chain of links",
			setup: func(t *testing.T, root, outside string) {
				// From the host: rootfs/usr/lib/../../../etc is the decoy.
				// Inside the root it is /etc again: a loop.
				symlink(t, "usr/lib/etc", filepath.Join(root, "etc"))
				symlink(t, "../../../etc", filepath.Join(root, "usr/lib/etc"))
			},
		},
		{
			name: "chain through a directory link",
			setup: func(t *testing.T, root, outside string) {
				// rootfs/etc -> lib/x/../../..; from the host that is base/,
				// whose etc/passwd is the decoy.
				if err := os.MkdirAll(filepath.Join(root, "lib/x"), 0o755); err != nil {
					t.Fatal(err)
				}
				symlink(t, "lib/x/../../../etc", filepath.Join(root, "etc"))
			},
		},
		{
			name: "etc -> .. loops back to root",
			setup: func(t *testing.T, root, outside string) {
				// rootfs/etc -> .. would be base/ from the host, whose
				// etc/passwd is the decoy.
				symlink(t, "..", filepath.Join(root, "etc"))
			},
		},
		{
			name: "relative escape resolves to the image's file",
			setup: func(t *testing.T, root, outside string) {
				write(t, filepath.Join(root, "etc/real/passwd"), "inside:x:5:5:::\n")
				write(t, filepath.Join(root, "etc/real/group"), "inside:x:5:inside\n")
				symlink(t, "../../../../../etc/real/passwd", filepath.Join(root, "etc/passwd"))
				symlink(t, "../../../../../etc/real/group", filepath.Join(root, "etc/group"))
			},
			want: "inside",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, outside := mkroot(t)
			c.setup(t, root, outside)
			db, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.LookupUser("decoy"); err == nil {
				t.Fatal("the decoy passwd outside the root was read")
			}
			if _, err := db.LookupGroup("decoy"); err == nil {
				t.Fatal("the decoy group outside the root was read")
			}
			if _, found := db.LookupUid(666); found {
				t.Fatal("the decoy uid was found")
			}
			// The host's own /etc/passwd has root; it must not leak in
			// either unless the image has it.
			if _, _, err := db.LookupUser("root"); err == nil {
				t.Fatal("the host's /etc/passwd was read")
			}
			if c.want != "" {
				if _, _, err := db.LookupUser(c.want); err != nil {
					t.Fatalf("%s: %v", c.want, err)
				}
				if g := db.SupplementaryGroups(c.want, 0); len(g) != 1 {
					t.Fatalf("groups of %s: %v", c.want, g)
				}
			}
		})
	}
}
