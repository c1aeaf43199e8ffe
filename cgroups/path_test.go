package cgroups

import (
	"strings"
	"testing"
)

func TestContainerPath(t *testing.T) {
	cases := []struct {
		driver, parent, id string
		want               string
		err                string // substring of the error; "" means none
	}{
		{DriverCgroupfs, "", "abc", "/berth/abc", ""},
		{DriverCgroupfs, "/kubepods/burstable/pod123", "abc", "/kubepods/burstable/pod123/abc", ""},
		{DriverCgroupfs, "/", "abc", "/abc", ""},
		{DriverCgroupfs, "relative", "abc", "", "not absolute"},
		{DriverCgroupfs, "kubepods/pod1", "abc", "", "not absolute"},
		{DriverCgroupfs, "/a/../b", "abc", "", "not clean"},
		{DriverCgroupfs, "/a/./b", "abc", "", "not clean"},
		{DriverCgroupfs, "/a/b/", "abc", "", "not clean"},
		{DriverCgroupfs, "//a", "abc", "", "not clean"},
		{DriverCgroupfs, "/..", "abc", "", "not clean"},
		{DriverCgroupfs, "/a\nb", "abc", "", "control character"},
		{DriverCgroupfs, "/process_api", "abc", "", "reserved"},
		{DriverCgroupfs, "/process_api/x", "abc", "", "reserved"},
		{DriverCgroupfs, "/x/process_api", "abc", "/x/process_api/abc", ""},
		{DriverCgroupfs, "x.slice/y", "abc", "", "not absolute"},
		{DriverCgroupfs, "", "", "", "container id"},
		{DriverCgroupfs, "", "a/b", "", "container id"},
		{DriverCgroupfs, "", "..", "", "container id"},
		{DriverCgroupfs, "", "a b", "", "container id"},

		{DriverSystemd, "", "abc", "system.slice:berth:abc", ""},
		{DriverSystemd, "kubepods-burstable-pod123.slice", "abc", "kubepods-burstable-pod123.slice:berth:abc", ""},
		{DriverSystemd, "kubepods-burstable-pod1_2_3.slice", "abc", "kubepods-burstable-pod1_2_3.slice:berth:abc", ""},
		{DriverSystemd, "-.slice", "abc", "-.slice:berth:abc", ""},
		{DriverSystemd, "x.slice/y", "abc", "", "'/'"},
		{DriverSystemd, "/kubepods.slice", "abc", "", "'/'"},
		{DriverSystemd, "relative", "abc", "", "does not end with .slice"},
		{DriverSystemd, "/a/../b", "abc", "", "not a path"},
		{DriverSystemd, "kubepods.scope", "abc", "", "does not end with .slice"},
		{DriverSystemd, ".slice", "abc", "", "empty slice name"},
		{DriverSystemd, "a--b.slice", "abc", "", "empty part"},
		{DriverSystemd, "-a.slice", "abc", "", "empty part"},
		{DriverSystemd, "a-.slice", "abc", "", "empty part"},
		{DriverSystemd, "a:b.slice", "abc", "", "contains"},
		{DriverSystemd, "a b.slice", "abc", "", "contains"},
		{DriverSystemd, "a\n.slice", "abc", "", "contains"},
		{DriverSystemd, "", "a:b", "", "container id"},
		{DriverSystemd, "", "a/b", "", "container id"},

		{"", "", "abc", "", "unknown cgroup driver"},
		{"systemd.slice", "", "abc", "", "unknown cgroup driver"},
	}
	for _, c := range cases {
		got, err := ContainerPath(c.driver, c.parent, c.id)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ContainerPath(%q, %q, %q) = %q, %v; want an error with %q", c.driver, c.parent, c.id, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ContainerPath(%q, %q, %q) = %q, %v; want %q", c.driver, c.parent, c.id, got, err, c.want)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"/", "/berth", "/berth/daemon", "/berth/shims/pod-1"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "berth", "/berth/", "/a//b", "/a/../b", "/.", "/process_api", "/process_api/abc"} {
		if err := CheckPath(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}
