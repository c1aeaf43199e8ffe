package cgroups

import (
	"fmt"
	"path/filepath"

	cgroupsv3 "github.com/containerd/cgroups/v3"
)

// Processes lists the processes (not threads) of the cgroup at p alone,
// read from one hierarchy: the unified one on a v2 host, else the pids or
// memory controller's. A cgroup that is gone has none.
func Processes(p string) ([]int, error) {
	if err := CheckPath(p); err != nil {
		return nil, fmt.Errorf("cgroups: processes: %w", err)
	}
	hs, err := hierarchies()
	if err != nil {
		return nil, err
	}
	var dir string
	if cgroupsv3.Mode() == cgroupsv3.Unified {
		if h, ok := unifiedHierarchy(hs); ok {
			dir = filepath.Join(h.mount, p)
		}
	} else {
		for _, c := range []string{"pids", "memory"} {
			if h, ok := controllerHierarchy(hs, c); ok {
				dir = filepath.Join(h.mount, p)
				break
			}
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("cgroups: processes %s: no hierarchy to read", p)
	}
	pids, _, err := procs([]string{dir})
	return pids, err
}
