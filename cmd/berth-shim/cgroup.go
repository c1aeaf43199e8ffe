package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The shim reads and writes cgroup files directly rather than through a
// cgroup library: it needs little (its own cgroup, the cgroups of its
// containers' inits), and a library's code and start-up work would be paid
// by every pod's monitor.

// cgMount is one mounted cgroup hierarchy: v1 with its controllers (a named
// one as "name=x"), or the unified v2 one.
type cgMount struct {
	root, mountpoint string
	controllers      []string
	v2               bool
}

// dir is where cgroup path p (absolute, as in /proc/PID/cgroup) is in the
// hierarchy, false if p is outside the part mounted.
func (m cgMount) dir(p string) (string, bool) {
	rel, err := filepath.Rel(m.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.Join(m.mountpoint, rel), true
}

// cgroupMounts lists the cgroup hierarchies mounted (each once), read
// once: they do not change while the shim runs.
var cgroupMounts = sync.OnceValues(func() ([]cgMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseCgroupMounts(f)
})

// parseCgroupMounts reads the cgroup hierarchies of a mountinfo file; a
// hierarchy mounted twice counts once, at its first mount point. Only the
// cgroup lines are parsed: with many pods the file has thousands of
// others, whose garbage would stay in the shim's heap.
func parseCgroupMounts(r io.Reader) ([]cgMount, error) {
	var out []cgMount
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(" - cgroup")) {
			continue
		}
		// id parent major:minor root mountpoint options [optional...] - type source superoptions
		pre, post, ok := strings.Cut(string(line), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		m := cgMount{root: unescapeMount(f[3]), mountpoint: unescapeMount(f[4]), v2: g[0] == "cgroup2"}
		if !m.v2 {
			for _, o := range strings.Split(g[2], ",") {
				if isController(o) {
					m.controllers = append(m.controllers, o)
				}
			}
			if len(m.controllers) == 0 {
				continue
			}
		}
		key := strings.Join(m.controllers, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, m)
	}
	return out, sc.Err()
}

// isController tells a v1 controller (or a named hierarchy) among the
// options of a cgroup mount.
func isController(o string) bool {
	switch {
	case strings.HasPrefix(o, "name="):
		return true
	case strings.Contains(o, "="):
		return false // release_agent=...
	}
	switch o {
	case "rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "nosuid", "nodev", "noexec", "relatime":
		return false
	}
	return true
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup is the cgroup the shim moved itself into, on every hierarchy.
type ownCgroup struct {
	dirs  []string // the cgroup's directory in each hierarchy
	roots []string // the root cgroup of that hierarchy
}

// joinCgroup moves the shim into path on every cgroup v1 hierarchy (cpuset
// gets its parent's cpus and mems first) and on the unified hierarchy.
// berthd's process sits in someone else's cgroups (on this kind of host, a
// login's memory cgroup); the shim must not be charged to them nor die
// with them.
func joinCgroup(path string) (*ownCgroup, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	own := &ownCgroup{}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, m := range mounts {
		dir, ok := m.dir(path)
		if !ok {
			continue
		}
		cpuset := !m.v2 && contains(m.controllers, "cpuset")
		if err := mkdirCgroup(m.mountpoint, dir, cpuset); err != nil {
			return own, fmt.Errorf("cgroup %s: %w", path, err)
		}
		own.dirs = append(own.dirs, dir)
		own.roots = append(own.roots, m.mountpoint)
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
			return own, fmt.Errorf("join cgroup %s: %w", path, err)
		}
	}
	if len(own.dirs) == 0 {
		return nil, fmt.Errorf("cgroup %s: no cgroup hierarchy mounted", path)
	}
	return own, nil
}

// mkdirCgroup makes dir and its missing parents below the hierarchy's
// mount point; in a cpuset hierarchy each new one gets its parent's cpus
// and mems, without which no process may join it.
func mkdirCgroup(mountpoint, dir string, cpuset bool) error {
	rel, err := filepath.Rel(mountpoint, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := mountpoint
	for _, part := range strings.Split(rel, "/") {
		parent := cur
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return err
		}
		if cpuset {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if b, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
					if err := os.WriteFile(filepath.Join(cur, f), bytes.TrimSpace(b), 0); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// leave moves the shim back to the root cgroup of every hierarchy and
// removes its own, so that nothing of the pod's shim is left when it exits.
func (c *ownCgroup) leave() error {
	pid := []byte(strconv.Itoa(os.Getpid()))
	var errs []error
	for i, dir := range c.dirs {
		if err := os.WriteFile(filepath.Join(c.roots[i], "cgroup.procs"), pid, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unifiedMode tells whether /sys/fs/cgroup is cgroup v2 alone.
func unifiedMode() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// oomKills reads how many processes the kernel's OOM killer killed in a
// container's memory cgroup: "oom_kill N" in memory.oom_control (v1, since
// Linux 4.13) or memory.events (v2). paths are the container's cgroup
// paths (cgroupPathsOf). It must run before the cgroup is removed.
func oomKills(paths map[string]string) (uint64, bool) {
	if p := paths["memory"]; p != "" {
		if n, ok := readCounter(filepath.Join(p, "memory.oom_control"), "oom_kill"); ok {
			return n, true
		}
	}
	if p := paths[""]; p != "" && unifiedMode() {
		if n, ok := readCounter(filepath.Join(p, "memory.events"), "oom_kill"); ok {
			return n, true
		}
	}
	return 0, false
}

// readCounter returns the value of a "key value" line of a cgroup file.
func readCounter(file, key string) (uint64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte{' '})
		if ok && string(k) == key {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// cgroupPathsOf returns the cgroup directories of process pid by
// controller, "" for the unified hierarchy, as libcontainer reports them
// for its containers. A container is found through its init this way
// whatever the cgroup driver named it.
func cgroupPathsOf(pid int) (map[string]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	return pathsOf(parseProcCgroup(b), mounts), nil
}

// parseProcCgroup reads /proc/PID/cgroup: the cgroup path by controller,
// "" for the unified hierarchy.
func parseProcCgroup(b []byte) map[string]string {
	own := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own
}

// pathsOf places the cgroup paths of a process in the mounted hierarchies.
func pathsOf(own map[string]string, mounts []cgMount) map[string]string {
	out := map[string]string{}
	for _, m := range mounts {
		if m.v2 {
			if p, ok := own[""]; ok {
				if d, ok := m.dir(p); ok {
					out[""] = d
				}
			}
			continue
		}
		for _, c := range m.controllers {
			if p, ok := own[c]; ok {
				if d, ok := m.dir(p); ok {
					out[c] = d
				}
			}
		}
	}
	return out
}

// cgroupProcs lists the processes in the cgroup at dir and below it.
func cgroupProcs(dir string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}
