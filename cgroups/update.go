package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"

	cgroupsv3 "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SetResources writes the limits of r (memory, CPU, cpuset, pids, hugetlb,
// and on cgroup v2 the unified settings) into the cgroup at the absolute
// path p, creating it where it does not exist yet: a pod's cgroup appears
// with its first container, and its limits may be set before. Unset fields
// of r leave the files as they are. The kernel's refusal of a value (a
// memory limit below what the cgroup holds: EBUSY on v1) comes back
// wrapped, so that errors.Is finds the errno.
func SetResources(p string, r *specs.LinuxResources) error {
	if err := CheckPath(p); err != nil {
		return fmt.Errorf("cgroups: set resources: %w", err)
	}
	if r == nil {
		return nil
	}
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	if cgroupsv3.Mode() == cgroupsv3.Unified {
		h, ok := unifiedHierarchy(hs)
		if !ok {
			return errors.New("cgroups: set resources: the unified hierarchy is not mounted")
		}
		// NewManager creates the directory, enables the controllers in the
		// parents' subtree_control and writes the values.
		if _, err := cgroup2.NewManager(h.mount, p, cgroup2.ToResources(r)); err != nil {
			return fmt.Errorf("cgroups: set resources of %s: %w", p, err)
		}
		return nil
	}
	return setV1(hs, p, r)
}

func setV1(hs []hierarchy, p string, r *specs.LinuxResources) error {
	var subsystems []cgroup1.Subsystem
	for _, c := range []struct {
		name string
		new  func(root string) (cgroup1.Subsystem, error)
	}{
		{"memory", func(root string) (cgroup1.Subsystem, error) { return cgroup1.NewMemory(root), nil }},
		{"cpu", func(root string) (cgroup1.Subsystem, error) { return cgroup1.NewCpu(root), nil }},
		{"cpuset", func(root string) (cgroup1.Subsystem, error) { return cgroup1.NewCpuset(root), nil }},
		{"pids", func(root string) (cgroup1.Subsystem, error) { return cgroup1.NewPids(root), nil }},
		{"hugetlb", func(root string) (cgroup1.Subsystem, error) { return cgroup1.NewHugetlb(root) }},
	} {
		h, ok := controllerHierarchy(hs, c.name)
		if !ok {
			continue
		}
		// Directories first, the way Place makes them (a new cpuset gets
		// its parent's cpus and mems, or it could not hold processes).
		if err := mkdirCgroup(h, p); err != nil {
			return fmt.Errorf("cgroups: set resources of %s (%s): %w", p, h.name(), err)
		}
		// As in ReadStats: the constructors append the controller's name
		// to the root they get.
		s, err := c.new(filepath.Dir(h.mount))
		if err != nil {
			return fmt.Errorf("cgroups: set resources of %s (%s): %w", p, h.name(), err)
		}
		subsystems = append(subsystems, s)
	}
	if len(subsystems) == 0 {
		return errors.New("cgroups: set resources: none of the memory, cpu, cpuset and pids controllers is mounted")
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(p), cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
		return subsystems, nil
	}))
	if err != nil {
		return fmt.Errorf("cgroups: set resources of %s: %w", p, err)
	}
	if err := cg.Update(r); err != nil {
		return fmt.Errorf("cgroups: set resources of %s: %w", p, err)
	}
	return nil
}
