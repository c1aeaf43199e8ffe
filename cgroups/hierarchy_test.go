package cgroups

import (
	"reflect"
	"testing"

	cgroupsv3 "github.com/containerd/cgroups/v3"
)

const hybridMountinfo = `22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 22 0:32 /docker/abc /var/lib/x/memory rw,relatime - cgroup cgroup rw,memory
51 22 0:38 / /mnt/u\040v2 rw,relatime - cgroup2 cgroup2 rw
52 22 0:40 / /mnt/named\040hier rw,relatime - cgroup cgroup rw,name=x
53 22 0:40 / /run/named rw,relatime - cgroup cgroup rw,name=x
`

func TestParseMountinfo(t *testing.T) {
	hs, err := parseMountinfo([]byte(hybridMountinfo), cgroupsv3.Hybrid)
	if err != nil {
		t.Fatal(err)
	}
	want := []hierarchy{
		{mount: "/sys/fs/cgroup/cpu,cpuacct", controllers: []string{"cpu", "cpuacct"}},
		{mount: "/sys/fs/cgroup/memory", controllers: []string{"memory"}},
		{mount: "/sys/fs/cgroup/cpuset", controllers: []string{"cpuset"}},
		{mount: "/sys/fs/cgroup/systemd", controllers: []string{"name=systemd"}},
		{mount: "/sys/fs/cgroup/unified", v2: true},
		{mount: "/mnt/named hier", controllers: []string{"name=x"}},
	}
	if !reflect.DeepEqual(hs, want) {
		t.Fatalf("got %+v\nwant %+v", hs, want)
	}
	if h, ok := controllerHierarchy(hs, "cpuacct"); !ok || h.mount != "/sys/fs/cgroup/cpu,cpuacct" {
		t.Fatalf("cpuacct: %+v", h)
	}
	if _, ok := controllerHierarchy(hs, "pids"); ok {
		t.Fatal("pids found")
	}

	legacy, err := parseMountinfo([]byte(hybridMountinfo), cgroupsv3.Legacy)
	if err != nil {
		t.Fatal(err)
	}
	if len(legacy) != 5 {
		t.Fatalf("legacy: %+v", legacy)
	}

	unified := "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n" +
		// A stray v1 named hierarchy on a v2 host is not used.
		"40 23 0:40 / /run/x rw - cgroup cgroup rw,name=x\n"
	hs, err = parseMountinfo([]byte(unified), cgroupsv3.Unified)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(hs, []hierarchy{{mount: "/sys/fs/cgroup", v2: true}}) {
		t.Fatalf("unified: %+v", hs)
	}

	if _, err := parseMountinfo([]byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), cgroupsv3.Legacy); err == nil {
		t.Fatal("no error without cgroup mounts")
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:  "/a b",
		`/plain`:   "/plain",
		`/a\134b`:  `/a\b`,
		`/trail\0`: `/trail\0`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
