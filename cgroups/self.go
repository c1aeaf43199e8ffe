package cgroups

import (
	"fmt"
	"strconv"

	cgroupsv3 "github.com/containerd/cgroups/v3"
)

// SelfPath returns the cgroup path of this process on the memory
// controller, or on the unified hierarchy where memory has no v1
// hierarchy (a pure v2 host). It is for diagnostics: where the daemon's
// memory is charged.
func SelfPath() (string, error) {
	return pidPath("self")
}

// pidPath reads /proc/<pid>/cgroup; pid is a number or "self".
func pidPath(pid string) (string, error) {
	v1, v2, err := procCgroups(pid)
	if err != nil {
		return "", err
	}
	if p, ok := v1["memory"]; ok {
		return p, nil
	}
	if v2 != "" {
		return v2, nil
	}
	return "", fmt.Errorf("cgroups: /proc/%s/cgroup names neither a memory nor a unified cgroup", pid)
}

// procCgroups returns the v1 paths of a process by controller (named
// hierarchies as "name=<name>") and its unified path.
func procCgroups(pid string) (v1 map[string]string, v2 string, err error) {
	if pid != "self" {
		if _, err := strconv.Atoi(pid); err != nil {
			return nil, "", fmt.Errorf("cgroups: invalid pid %q", pid)
		}
	}
	v1, v2, err = cgroupsv3.ParseCgroupFileUnified("/proc/" + pid + "/cgroup")
	if err != nil {
		return nil, "", fmt.Errorf("cgroups: %w", err)
	}
	return v1, v2, nil
}
