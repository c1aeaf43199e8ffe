package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// machine describes where the numbers were taken.
type machine struct {
	OS, Kernel, CPU string
	CPUs            int
	MemoryBytes     int64
	Filesystem      string // of the temp dir both runtimes store images in
	RunFilesystem   string // of /run, where berthd's state dir is (a node's is tmpfs)
	// LoadAvg is the 1-minute load average before the first pull: other
	// work on the machine shows in the spread of the runs.
	LoadAvg string
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), OS: "unknown", Kernel: "unknown", CPU: "unknown", Filesystem: "unknown", RunFilesystem: "unknown"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if v := firstField(string(b), "model name", ':'); v != "" {
			m.CPU = v
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryBytes = memTotal(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if v := firstField(string(b), "PRETTY_NAME", '='); v != "" {
			m.OS = strings.Trim(v, `"`)
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAvg = f[0]
		}
	}
	var st unix.Statfs_t
	if unix.Statfs(os.TempDir(), &st) == nil {
		m.Filesystem = fsName(int64(st.Type))
	}
	if unix.Statfs("/run", &st) == nil {
		m.RunFilesystem = fsName(int64(st.Type))
	}
	return m
}

// firstField returns the value of the first "key<sep>value" line.
func firstField(s, key string, sep byte) string {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// memTotal reads MemTotal (kB) from /proc/meminfo, in bytes.
func memTotal(meminfo string) int64 {
	f := strings.Fields(firstField(meminfo, "MemTotal", ':'))
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("magic %#x", magic)
}
