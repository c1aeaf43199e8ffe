package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The paths found for a process are the cgroups that list it.
func TestCgroupPathsOf(t *testing.T) {
	paths, err := cgroupPathsOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no cgroup path")
	}
	for c, p := range paths {
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			t.Errorf("%q: %v", c, err)
			continue
		}
		if !slices.Contains(strings.Fields(string(b)), strconv.Itoa(os.Getpid())) {
			t.Errorf("%q: %s does not list this process", c, p)
		}
	}
	if _, err := cgroupPathsOf(-1); err == nil {
		t.Error("no error for a missing process")
	}
}

func TestParseCgroupMounts(t *testing.T) {
	info := `25 1 0:22 / /sys rw - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
34 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
35 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
99 25 0:31 / /mnt/memory\040again rw - cgroup cgroup rw,memory
36 25 0:32 /sub /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids,release_agent=/x
`
	ms, err := parseCgroupMounts(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("%d mounts, want 5 (the second memory mount is the same hierarchy): %+v", len(ms), ms)
	}
	if !ms[0].v2 || ms[1].controllers[0] != "name=systemd" || !slices.Equal(ms[2].controllers, []string{"cpu", "cpuacct"}) {
		t.Errorf("mounts %+v", ms)
	}
	own := parseProcCgroup([]byte("12:pids:/sub/pod/c\n4:cpu,cpuacct:/pod/c\n3:memory:/pod/c\n1:name=systemd:/user.slice\n0::/pod/c\n"))
	got := pathsOf(own, ms)
	want := map[string]string{
		"":             "/sys/fs/cgroup/unified/pod/c",
		"cpu":          "/sys/fs/cgroup/cpu,cpuacct/pod/c",
		"cpuacct":      "/sys/fs/cgroup/cpu,cpuacct/pod/c",
		"memory":       "/sys/fs/cgroup/memory/pod/c",
		"name=systemd": "/sys/fs/cgroup/systemd/user.slice",
		"pids":         "/sys/fs/cgroup/pids/pod/c",
	}
	if len(got) != len(want) {
		t.Errorf("paths %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: %q, want %q", k, got[k], v)
		}
	}
	// A cgroup outside the part of the hierarchy mounted has no path.
	if d, ok := ms[4].dir("/other"); ok {
		t.Errorf("outside the mount root: %q", d)
	}
	if got := unescapeMount(`/a\040b`); got != "/a b" {
		t.Errorf("unescape: %q", got)
	}
}
