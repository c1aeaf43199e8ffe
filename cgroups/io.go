package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	cgroupsv3 "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// IO is a cgroup's block I/O on one device.
type IO struct {
	Major, Minor          uint64
	ReadBytes, WriteBytes uint64
	Reads, Writes         uint64 // operations
}

// ReadIO reads the block I/O of the cgroup at p per device, from the blkio
// controller (v1) or io.stat (v2). Devices with no I/O may be missing, and
// a host where the filesystem sits on a virtual disk may account none.
func ReadIO(p string) ([]IO, error) {
	if err := CheckPath(p); err != nil {
		return nil, fmt.Errorf("cgroups: io: %w", err)
	}
	hs, err := hierarchies()
	if err != nil {
		return nil, err
	}
	if cgroupsv3.Mode() == cgroupsv3.Unified {
		h, ok := unifiedHierarchy(hs)
		if !ok {
			return nil, errors.New("cgroups: io: the unified hierarchy is not mounted")
		}
		if _, err := os.Stat(filepath.Join(h.mount, p)); err != nil {
			return nil, fmt.Errorf("cgroups: io %s: %w", p, err)
		}
		cg, err := cgroup2.Load(p, cgroup2.WithMountpoint(h.mount))
		if err != nil {
			return nil, fmt.Errorf("cgroups: io %s: %w", p, err)
		}
		m, err := cg.StatFiltered(cgroup2.StatIO)
		if err != nil {
			return nil, fmt.Errorf("cgroups: io %s: %w", p, err)
		}
		var out []IO
		for _, e := range m.GetIo().GetUsage() {
			out = append(out, IO{Major: e.GetMajor(), Minor: e.GetMinor(), ReadBytes: e.GetRbytes(), WriteBytes: e.GetWbytes(), Reads: e.GetRios(), Writes: e.GetWios()})
		}
		return out, nil
	}
	h, ok := controllerHierarchy(hs, "blkio")
	if !ok {
		return nil, nil
	}
	blkio := cgroup1.NewBlkio(filepath.Dir(h.mount))
	cg, err := cgroup1.Load(cgroup1.StaticPath(p), cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
		return []cgroup1.Subsystem{blkio}, nil
	}))
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil, fmt.Errorf("cgroups: io %s: %w", p, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("cgroups: io %s: %w", p, err)
	}
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return nil, fmt.Errorf("cgroups: io %s: %w", p, err)
	}
	byDev := map[[2]uint64]*IO{}
	var order [][2]uint64
	entry := func(major, minor uint64) *IO {
		k := [2]uint64{major, minor}
		if e, ok := byDev[k]; ok {
			return e
		}
		e := &IO{Major: major, Minor: minor}
		byDev[k] = e
		order = append(order, k)
		return e
	}
	for _, e := range m.GetBlkio().GetIoServiceBytesRecursive() {
		switch e.GetOp() {
		case "Read":
			entry(e.GetMajor(), e.GetMinor()).ReadBytes = e.GetValue()
		case "Write":
			entry(e.GetMajor(), e.GetMinor()).WriteBytes = e.GetValue()
		}
	}
	for _, e := range m.GetBlkio().GetIoServicedRecursive() {
		switch e.GetOp() {
		case "Read":
			entry(e.GetMajor(), e.GetMinor()).Reads = e.GetValue()
		case "Write":
			entry(e.GetMajor(), e.GetMinor()).Writes = e.GetValue()
		}
	}
	out := make([]IO, 0, len(order))
	for _, k := range order {
		out = append(out, *byDev[k])
	}
	return out, nil
}
