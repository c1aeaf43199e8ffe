package server

import (
	"os"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/cgroups"
)

// processUsage is what a container's processes hold: counted from /proc
// for the processes of its cgroup.
type processUsage struct {
	processes uint64
	fds       uint64
	sockets   uint64
}

// cgroupProcessUsage counts the processes of the cgroup at p and their
// open file descriptors and sockets. Processes that exit meanwhile are
// skipped.
func cgroupProcessUsage(p string) processUsage {
	pids, err := cgroups.Processes(p)
	if err != nil {
		return processUsage{}
	}
	u := processUsage{processes: uint64(len(pids))}
	for _, pid := range pids {
		fds, sockets := countFDs("/proc/" + strconv.Itoa(pid) + "/fd")
		u.fds += fds
		u.sockets += sockets
	}
	return u
}

// countFDs counts the descriptors in a /proc/PID/fd directory and how many
// of them are sockets.
func countFDs(dir string) (fds, sockets uint64) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		fds++
		if target, err := os.Readlink(dir + "/" + n); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return fds, sockets
}
