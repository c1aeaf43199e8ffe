package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	cgroupsv3 "github.com/containerd/cgroups/v3"
)

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	// mount is where its root is mounted, e.g. /sys/fs/cgroup/memory.
	mount string
	// v2 says it is the unified hierarchy.
	v2 bool
	// controllers are the v1 controllers bound to it, named hierarchies
	// as "name=<name>" (e.g. "name=systemd").
	controllers []string
}

func (h hierarchy) has(controller string) bool { return slices.Contains(h.controllers, controller) }

// name is how errors refer to the hierarchy: its controllers, or
// "unified".
func (h hierarchy) name() string {
	if h.v2 {
		return "unified"
	}
	return strings.Join(h.controllers, ",")
}

// v1Controllers are the controllers a v1 mount's super options can name;
// other options (rw, clone_children, xattr, release_agent=...) are not
// controllers.
var v1Controllers = []string{
	"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb",
	"memory", "misc", "net_cls", "net_prio", "perf_event", "pids", "rdma",
}

// hierarchies lists the hierarchies this process sees. Cgroup mounts do not
// change while a daemon runs, so the answer is kept; the error is kept too,
// since a host without cgroups stays without.
var hierarchies = sync.OnceValues(func() ([]hierarchy, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountinfo(data, cgroupsv3.Mode())
})

// parseMountinfo picks the cgroup hierarchies out of /proc/self/mountinfo.
// A hierarchy mounted more than once (a bind mount, a mount inside a
// container's root) appears once: at the mount of its root directory when
// there is one, under /sys/fs/cgroup when there is one, else at its first
// mount. On a unified host only the v2 hierarchy counts, on a legacy
// one only the v1 ones.
func parseMountinfo(data []byte, mode cgroupsv3.CGMode) ([]hierarchy, error) {
	type found struct {
		hierarchy
		root string
	}
	var (
		out  []found
		byID = map[string]int{} // major:minor -> index in out
	)
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		fstype := qf[0]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		h := found{
			hierarchy: hierarchy{mount: unescape(pf[4]), v2: fstype == "cgroup2"},
			root:      unescape(pf[3]),
		}
		if !h.v2 {
			for _, o := range strings.Split(qf[2], ",") {
				if slices.Contains(v1Controllers, o) || strings.HasPrefix(o, "name=") {
					h.controllers = append(h.controllers, o)
				}
			}
			if len(h.controllers) == 0 {
				continue
			}
		}
		if h.v2 && mode == cgroupsv3.Legacy || !h.v2 && mode == cgroupsv3.Unified {
			continue
		}
		dev := pf[2]
		if i, dup := byID[dev]; dup {
			// Prefer the mount of the hierarchy's root, then the one in
			// the usual place, then the first.
			if better(h.root, h.mount, out[i].root, out[i].mount) {
				out[i] = h
			}
			continue
		}
		byID[dev] = len(out)
		out = append(out, h)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cgroups: no cgroup hierarchy is mounted")
	}
	hs := make([]hierarchy, len(out))
	for i, h := range out {
		hs[i] = h.hierarchy
	}
	return hs, nil
}

// better says whether a mount of a hierarchy (its root directory and
// mount point) is a better one to use than another mount of it.
func better(root, mount, oldRoot, oldMount string) bool {
	if (root == "/") != (oldRoot == "/") {
		return root == "/"
	}
	usual := func(m string) bool { return strings.HasPrefix(m, "/sys/fs/cgroup/") || m == "/sys/fs/cgroup" }
	return usual(mount) && !usual(oldMount)
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// controllerHierarchy returns the v1 hierarchy a controller is bound to.
func controllerHierarchy(hs []hierarchy, controller string) (hierarchy, bool) {
	for _, h := range hs {
		if !h.v2 && h.has(controller) {
			return h, true
		}
	}
	return hierarchy{}, false
}

// unifiedHierarchy returns the v2 hierarchy, if mounted.
func unifiedHierarchy(hs []hierarchy) (hierarchy, bool) {
	for _, h := range hs {
		if h.v2 {
			return h, true
		}
	}
	return hierarchy{}, false
}
