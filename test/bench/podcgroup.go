package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/test/mountinfo"
)

// benchCgroup is the parent of every pod cgroup the benchmark names:
// /berth-bench/<runtime>/pod-<n>.
const benchCgroup = "/berth-bench"

// berthShimCgroup is berthd's default runtime.shim_cgroup; each pod's
// monitor has /berth/shims/<pod id>, which berthd removes with the pod.
const berthShimCgroup = "/berth/shims"

// cgroupMounts lists the mount points of the cgroup hierarchies (v1 and
// unified) in mountinfo.
func cgroupMounts(listing string) []string {
	var out []string
	for _, line := range strings.Split(listing, "\n") {
		// "... mountpoint options - fstype source superoptions"
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		out = append(out, mountinfo.Unescape(f[4]))
	}
	return out
}

func hostCgroupMounts() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return cgroupMounts(string(b)), nil
}

// cgroupTree describes what exists of cgroup p: on how many hierarchies,
// the child cgroups below it (relative paths, on any hierarchy), and the
// processes anywhere in its tree.
type cgroupTree struct {
	Hierarchies int
	Children    []string
	Procs       []int
}

func inspectCgroup(p string) (cgroupTree, error) {
	var t cgroupTree
	mounts, err := hostCgroupMounts()
	if err != nil {
		return t, err
	}
	children := map[string]bool{}
	procs := map[int]bool{}
	for _, m := range mounts {
		root := filepath.Join(m, p)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		t.Hierarchies++
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if path != root {
				rel, _ := filepath.Rel(root, path)
				children[rel] = true
			}
			b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			if err != nil {
				return nil
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if pid, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil && pid > 0 {
					procs[pid] = true
				}
			}
			return nil
		})
		if err != nil {
			return t, err
		}
	}
	for c := range children {
		t.Children = append(t.Children, c)
	}
	for pid := range procs {
		t.Procs = append(t.Procs, pid)
	}
	return t, nil
}

// prepareBenchCgroups makes sure the runtime's part of /berth-bench holds
// nothing: an empty leftover of an earlier run is removed, one with
// processes in it means another benchmark runs (or one was killed hard)
// and is refused rather than touched.
func prepareBenchCgroups(runtime string) error {
	p := benchCgroup + "/" + runtime
	t, err := inspectCgroup(p)
	if err != nil {
		return err
	}
	if len(t.Procs) > 0 {
		return fmt.Errorf("cgroup %s holds %d processes (another benchmark running, or left from one killed hard?); remove them first", p, len(t.Procs))
	}
	return cgroups.Remove(p, false)
}

// removeBenchCgroups removes /berth-bench/<runtime> for each runtime,
// killing what is still inside (processes of the benchmark's pods that
// their runtime did not stop), then /berth-bench when nothing else is in
// it. It reports what had to be killed.
func removeBenchCgroups(runtimes ...string) error {
	var errs []error
	for _, rt := range runtimes {
		p := benchCgroup + "/" + rt
		t, err := inspectCgroup(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(t.Procs) > 0 {
			fmt.Fprintf(os.Stderr, "bench: cleanup: killing %d processes left in %s: %v\n", len(t.Procs), p, t.Procs)
		}
		if err := cgroups.Remove(p, true); err != nil {
			errs = append(errs, err)
		}
	}
	t, err := inspectCgroup(benchCgroup)
	if err == nil && len(t.Children) == 0 && len(t.Procs) == 0 && t.Hierarchies > 0 {
		if err := cgroups.Remove(benchCgroup, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
