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
