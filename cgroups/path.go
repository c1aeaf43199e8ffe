// Package cgroups decides where berth's processes live in the cgroup
// hierarchies and cleans those places up.
//
// Containers get their cgroup from libcontainer, through the cgroupsPath
// that ContainerPath computes. berthd itself and each per-pod shim are put
// in place by Place: berthd under /berth/daemon, each shim under
// /berth/shims/<pod>, so that neither is charged to whatever cgroup started
// it and a shim's memory is accounted apart from the containers it runs.
//
// Every path here is an absolute cgroup path such as "/berth/daemon",
// relative to the root of each hierarchy. On a legacy or hybrid host it
// names a directory on every mounted v1 hierarchy (each controller and
// name=systemd) and, on a hybrid host, on the unified v2 hierarchy too; on a
// pure v2 host only on the unified one. Relative paths are refused: a
// process started from a login shell may sit in a cgroup that belongs to
// someone else (a login manager, a sandbox), and a path relative to it
// would land there.
package cgroups

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Cgroup drivers: how a container's cgroupsPath is spelled, and who
// creates the cgroup (libcontainer's cgroupfs manager, or systemd through
// D-Bus).
const (
	DriverCgroupfs = "cgroupfs"
	DriverSystemd  = "systemd"
)

// DefaultParent is the cgroup_parent of a pod that has none, with the
// cgroupfs driver.
const DefaultParent = "/berth"

// DefaultSlice is the parent slice of a pod that has none, with the systemd
// driver.
const DefaultSlice = "system.slice"

// SystemdPrefix is the middle part of a systemd cgroupsPath: containers
// become scopes named berth-<id>.scope.
const SystemdPrefix = "berth"

// ContainerPath returns the cgroupsPath of the OCI spec for a container
// (or a pod's infra process) with the given id, under the CRI cgroup_parent
// parent.
//
// With DriverCgroupfs the parent is an absolute, clean cgroup path
// (DefaultParent when empty), and the result is parent/id. With
// DriverSystemd the parent is a slice name as the kubelet's systemd driver
// spells it ("kubepods-burstable-pod123.slice"; DefaultSlice when empty),
// and the result is "<slice>:berth:<id>", the form runc's systemd manager
// reads.
func ContainerPath(driver, parent, id string) (string, error) {
	switch driver {
	case DriverCgroupfs:
		if err := checkName(id, "/"); err != nil {
			return "", fmt.Errorf("cgroups: container id: %w", err)
		}
		if parent == "" {
			parent = DefaultParent
		}
		if err := CheckPath(parent); err != nil {
			return "", fmt.Errorf("cgroups: cgroup_parent: %w", err)
		}
		return path.Join(parent, id), nil
	case DriverSystemd:
		// ':' separates the three parts; '/' would make a nested unit name.
		if err := checkName(id, "/:"); err != nil {
			return "", fmt.Errorf("cgroups: container id: %w", err)
		}
		if parent == "" {
			parent = DefaultSlice
		}
		if err := CheckSlice(parent); err != nil {
			return "", fmt.Errorf("cgroups: cgroup_parent: %w", err)
		}
		return parent + ":" + SystemdPrefix + ":" + id, nil
	default:
		return "", fmt.Errorf("cgroups: unknown cgroup driver %q (want %q or %q)", driver, DriverCgroupfs, DriverSystemd)
	}
}

// checkName accepts one path component free of the bytes in forbidden,
// whitespace and control characters.
func checkName(s, forbidden string) error {
	if s == "" || s == "." || s == ".." {
		return fmt.Errorf("invalid name %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f || strings.IndexByte(forbidden, s[i]) >= 0 {
			return fmt.Errorf("invalid name %q", s)
		}
	}
	return nil
}

// reservedTop is a top-level cgroup of the machine's own that berth never
// creates, enters or removes anything in.
const reservedTop = "process_api"

// CheckPath accepts an absolute, clean cgroup path without "." or ".."
// components, outside the reserved top-level cgroup.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("cgroup path %q is not absolute", p)
	}
	if path.Clean(p) != p {
		return fmt.Errorf("cgroup path %q is not clean", p)
	}
	for _, c := range strings.Split(p[1:], "/") {
		if c == "." || c == ".." {
			return fmt.Errorf("cgroup path %q has a %q component", p, c)
		}
		if strings.ContainsFunc(c, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return fmt.Errorf("cgroup path %q has a control character", p)
		}
	}
	if p == "/"+reservedTop || strings.HasPrefix(p, "/"+reservedTop+"/") {
		return fmt.Errorf("cgroup path %q is reserved", p)
	}
	return nil
}

// CheckSlice accepts a systemd slice unit name as runc's systemd driver
// expands it: "<a>-<b>-<c>.slice" with non-empty dash-separated parts
// (each prefix names a parent slice), or the root slice "-.slice".
func CheckSlice(s string) error {
	if strings.ContainsRune(s, '/') {
		return fmt.Errorf("slice %q contains '/': the systemd driver takes a slice name, not a path", s)
	}
	name, ok := strings.CutSuffix(s, ".slice")
	if !ok {
		return fmt.Errorf("slice %q does not end with .slice", s)
	}
	if name == "-" {
		return nil
	}
	if name == "" {
		return errors.New("empty slice name")
	}
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			return fmt.Errorf("slice %q has an empty part between dashes", s)
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		// The characters systemd allows in unit names, less ':' which
		// separates the parts of a cgroupsPath.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '\\') {
			return fmt.Errorf("slice %q contains %q", s, c)
		}
	}
	return nil
}
