package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy is matched (errors.Is) by the error of Remove without kill when
// processes are still inside.
var ErrBusy = errors.New("cgroup has processes")

// KillTimeout bounds how long Remove waits for killed processes to leave.
const KillTimeout = 5 * time.Second

// Place moves the process pid (all its threads) into the cgroup at the
// absolute path p on every hierarchy, creating the directories as needed.
// New cpuset directories get their parent's cpus and mems first, since a
// v1 cpuset cgroup with empty ones refuses processes.
func Place(p string, pid int) error {
	if err := CheckPath(p); err != nil {
		return fmt.Errorf("cgroups: place: %w", err)
	}
	if pid <= 0 {
		return fmt.Errorf("cgroups: place: invalid pid %d", pid)
	}
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := filepath.Join(h.mount, p)
		if err := mkdirCgroup(h, p); err != nil {
			return fmt.Errorf("cgroups: place %d in %s (%s): %w", pid, p, h.name(), err)
		}
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("cgroups: place %d in %s (%s): %w", pid, p, h.name(), err)
		}
	}
	return nil
}

// mkdirCgroup creates the directories of p on h, one level at a time.
func mkdirCgroup(h hierarchy, p string) error {
	cpuset := !h.v2 && h.has("cpuset")
	dir := h.mount
	for _, c := range splitPath(p) {
		parent := dir
		dir = filepath.Join(dir, c)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if cpuset {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if err := inherit(parent, dir, f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// inherit copies the file f of parent into dir when dir's is empty.
func inherit(parent, dir, f string) error {
	cur, err := os.ReadFile(filepath.Join(dir, f))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(cur)) > 0 {
		return nil
	}
	v, err := os.ReadFile(filepath.Join(parent, f))
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, f), string(bytes.TrimSpace(v)))
}

// splitPath splits a checked absolute path into its components.
func splitPath(p string) []string {
	var out []string
	for _, c := range bytes.Split([]byte(p[1:]), []byte("/")) {
		if len(c) > 0 {
			out = append(out, string(c))
		}
	}
	return out
}

// writeFile writes a cgroup control file, which always exists.
func writeFile(p, v string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Remove deletes the cgroup at p and everything below it on every
// hierarchy, children first. A directory that does not exist is fine.
// Processes still inside anywhere in the tree make Remove fail with
// ErrBusy, naming the cgroup, unless kill is true: then each of them gets
// SIGKILL, again until the tree is empty (a process may fork while being
// killed), for at most KillTimeout. The calling process is never killed: a
// tree that holds it cannot be removed.
func Remove(p string, kill bool) error {
	if err := CheckPath(p); err != nil {
		return fmt.Errorf("cgroups: remove: %w", err)
	}
	if p == "/" {
		return errors.New("cgroups: remove: refusing to remove the root cgroup")
	}
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	// Every directory of the tree, on every hierarchy, children first.
	var dirs []string
	for _, h := range hs {
		d, err := subtree(filepath.Join(h.mount, p))
		if err != nil {
			return fmt.Errorf("cgroups: remove %s (%s): %w", p, h.name(), err)
		}
		dirs = append(dirs, d...)
	}
	if len(dirs) == 0 {
		return nil
	}

	pids, where, err := procs(dirs)
	if err != nil {
		return fmt.Errorf("cgroups: remove %s: %w", p, err)
	}
	if len(pids) > 0 {
		if !kill {
			return fmt.Errorf("cgroups: remove %s: %w: %d in %s", p, ErrBusy, len(pids), where)
		}
		if err := killAll(p, hs, dirs); err != nil {
			return err
		}
	}

	// A cgroup whose last process just exited can be busy for a moment.
	deadline := time.Now().Add(time.Second)
	for _, d := range dirs {
		for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if errors.Is(err, unix.EBUSY) && time.Now().Before(deadline) {
				time.Sleep(delay)
				continue
			}
			if errors.Is(err, unix.EBUSY) && !kill {
				return fmt.Errorf("cgroups: remove %s: %w: %s", p, ErrBusy, d)
			}
			return fmt.Errorf("cgroups: remove %s: rmdir %s: %w", p, d, err)
		}
	}
	return nil
}

// killAll sends SIGKILL to every process in dirs until none is left.
func killAll(p string, hs []hierarchy, dirs []string) error {
	self := os.Getpid()
	pids, where, err := procs(dirs)
	if err != nil {
		return fmt.Errorf("cgroups: remove %s: %w", p, err)
	}
	if slices.Contains(pids, self) {
		return fmt.Errorf("cgroups: remove %s: %w: it holds this process (in %s)", p, ErrBusy, where)
	}
	// cgroup.kill (v2, Linux 5.14) kills a whole tree at once, forks
	// included; the loop below remains for v1 and older kernels.
	if h, ok := unifiedHierarchy(hs); ok {
		_ = writeFile(filepath.Join(h.mount, p, "cgroup.kill"), "1")
	}
	deadline := time.Now().Add(KillTimeout)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		pids, where, err := procs(dirs)
		if err != nil {
			return fmt.Errorf("cgroups: remove %s: %w", p, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if slices.Contains(pids, self) {
			return fmt.Errorf("cgroups: remove %s: %w: it holds this process (in %s)", p, ErrBusy, where)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: remove %s: %w: %d still in %s %v after SIGKILL", p, ErrBusy, len(pids), where, KillTimeout)
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("cgroups: remove %s: kill %d: %w", p, pid, err)
			}
		}
		time.Sleep(delay)
	}
}

// subtree lists the directories under root, root included, deepest first.
// A missing root gives none.
func subtree(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub, err := subtree(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return append(out, root), nil
}

// procs returns the distinct pids in the cgroup.procs files of dirs, and
// the first directory that has any. A directory removed meanwhile counts
// as empty. Pid 0 (a process outside this pid namespace) is left out: it
// cannot be signalled, and kill(0) would mean this process group.
func procs(dirs []string) (pids []int, where string, err error) {
	seen := map[int]bool{}
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) {
				continue
			}
			return nil, "", err
		}
		s := bufio.NewScanner(bytes.NewReader(data))
		for s.Scan() {
			pid, err := strconv.Atoi(string(bytes.TrimSpace(s.Bytes())))
			if err != nil || pid <= 0 {
				continue
			}
			if where == "" {
				where = d
			}
			if !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids, where, nil
}
