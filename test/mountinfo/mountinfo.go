// Package mountinfo lists mount points from /proc/self/mountinfo for the
// tests, the benchmark and the critest runner, which check and clean up
// what berthd and the runtimes they compare mounted.
package mountinfo

import (
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Read returns /proc/self/mountinfo, or "" when it cannot be read.
func Read() string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return string(b)
}

// Under lists the mount points of a mountinfo listing at or below any of
// dirs, deepest first, so that unmounting them in order never meets a busy
// parent. A path mounted more than once is listed once per mount.
func Under(listing string, dirs ...string) []string {
	clean := make([]string, len(dirs))
	for i, d := range dirs {
		clean[i] = path.Clean(d)
	}
	var out []string
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := Unescape(f[4])
		for _, d := range clean {
			if mp == d || strings.HasPrefix(mp, strings.TrimSuffix(d, "/")+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int {
		if da, db := strings.Count(a, "/"), strings.Count(b, "/"); da != db {
			return db - da
		}
		return len(b) - len(a)
	})
	return out
}

// Unescape undoes the octal escapes (\040 for a space, \011, \012, \134)
// the kernel writes in mountinfo paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
