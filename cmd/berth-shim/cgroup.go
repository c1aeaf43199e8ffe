package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// joinCgroup moves the shim into path on every cgroup v1 hierarchy (cpuset
// gets its parent's cpus and mems first) and on the unified hierarchy, and
// returns the manager that can remove those cgroups later. berthd's process
// sits in someone else's cgroups (on this kind of host, a login's memory
// cgroup); the shim must not be charged to them nor die with them.
func joinCgroup(path string) (cgroups.Manager, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}})
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if err := m.Apply(os.Getpid()); err != nil {
		return nil, fmt.Errorf("join cgroup %s: %w", path, err)
	}
	return m, nil
}

// leaveCgroup moves the shim back to the root cgroup of every hierarchy and
// removes its own, so that nothing of the pod's shim is left when it exits.
func leaveCgroup(m cgroups.Manager, path string) error {
	for _, p := range m.GetPaths() {
		root, ok := strings.CutSuffix(p, path)
		if !ok || root == "" {
			continue
		}
		if err := cgroups.WriteCgroupProc(root, os.Getpid()); err != nil {
			return err
		}
	}
	return m.Destroy()
}

// oomKills reads how many processes the kernel's OOM killer killed in a
// container's memory cgroup: "oom_kill N" in memory.oom_control (v1, since
// Linux 4.13) or memory.events (v2). paths are libcontainer's cgroup paths
// of the container. It must run before the cgroup is removed.
func oomKills(paths map[string]string) (uint64, bool) {
	if p := paths["memory"]; p != "" {
		if n, ok := readCounter(filepath.Join(p, "memory.oom_control"), "oom_kill"); ok {
			return n, true
		}
	}
	if p := paths[""]; p != "" && cgroups.IsCgroup2UnifiedMode() {
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
// for its containers. A container of a runtime binary is found through its
// init this way whatever the cgroup driver named it.
func cgroupPathsOf(pid int) (map[string]string, error) {
	own, err := cgroups.ParseCgroupFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, err
	}
	if cgroups.IsCgroup2UnifiedMode() {
		return map[string]string{"": filepath.Join("/sys/fs/cgroup", own[""])}, nil
	}
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range mounts {
		for _, ss := range m.Subsystems {
			p, ok := own[ss]
			if !ok {
				continue
			}
			rel, err := filepath.Rel(m.Root, p)
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			out[ss] = filepath.Join(m.Mountpoint, rel)
		}
	}
	if p, ok := own[""]; ok && cgroups.IsCgroup2HybridMode() {
		out[""] = filepath.Join("/sys/fs/cgroup/unified", p)
	}
	return out, nil
}
