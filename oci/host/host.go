// Package host reads the facts about the node that container specs depend
// on: the daemon's capabilities, its open-files limit, the cgroup layout
// and the device nodes.
package host

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/spec"
)

// Facts are read once at start; they do not change while berthd runs.
type Facts struct {
	Capabilities      []string // bounding set, "CAP_" names
	CanLowerOOMScore  bool     // holds CAP_SYS_RESOURCE
	MaxNoFile         uint64
	CgroupV2          bool // unified hierarchy only
	HugetlbController bool // hugetlb reachable by the cgroup manager
}

// Read gathers the facts.
func Read() (Facts, error) {
	var f Facts
	caps, err := boundingSet()
	if err != nil {
		return f, err
	}
	f.Capabilities = caps
	for _, c := range caps {
		if c == "CAP_SYS_RESOURCE" {
			f.CanLowerOOMScore = true
		}
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
		f.MaxNoFile = rl.Max
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		f.CgroupV2 = true
		data, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		f.HugetlbController = strings.Contains(string(data), "hugetlb")
	} else {
		_, err := os.Stat("/sys/fs/cgroup/hugetlb")
		f.HugetlbController = err == nil
	}
	return f, nil
}

// boundingSet lists the capabilities this process may hand on, from the
// CapBnd mask in /proc/self/status.
func boundingSet() ([]string, error) {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		hexMask, ok := strings.CutPrefix(sc.Text(), "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hexMask), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("CapBnd: %w", err)
		}
		var out []string
		for _, c := range capability.ListKnown() {
			if mask&(1<<uint(c)) != 0 {
				out = append(out, "CAP_"+strings.ToUpper(c.String()))
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no CapBnd line in /proc/self/status")
}

// DeviceInfo stats a host device node for a container's device list.
func DeviceInfo(path string) (spec.HostDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return spec.HostDevice{}, err
	}
	d := spec.HostDevice{Path: path, Mode: os.FileMode(st.Mode & 0o777), UID: st.Uid, GID: st.Gid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		d.Type = 'c'
	case unix.S_IFBLK:
		d.Type = 'b'
	case unix.S_IFIFO:
		d.Type = 'p'
	case unix.S_IFDIR:
		d.Mode |= os.ModeDir
	}
	d.Major, d.Minor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	return d, nil
}

// ListDevices lists device nodes under dir, recursively.
func ListDevices(dir string) ([]spec.HostDevice, error) {
	var out []spec.HostDevice
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // a device that vanished or cannot be read is skipped
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) == 0 {
			return nil
		}
		if d, err := DeviceInfo(p); err == nil && d.Type != 0 {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
