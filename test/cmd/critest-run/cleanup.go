package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// mountsUnder lists the mount points at or below any of dirs, deepest
// first, from a /proc/self/mountinfo listing.
func mountsUnder(mountinfo string, dirs ...string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of a
// mountinfo field.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
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

// portmapIDRe finds the container ID in the comment portmap puts on its
// rules: `dnat name: "<network>" id: "<id>"`.
var portmapIDRe = regexp.MustCompile(`name: \\?"([^"\\]+)\\?" id: \\?"([^"\\]+)\\?"`)

// portmapIDs lists the IDs portmap's nat rules of network name carry, in
// an `iptables -t nat -S` listing: the pods whose port mappings are left
// when a run ends without removing them.
func portmapIDs(listing, name string) []string {
	var ids []string
	for _, m := range portmapIDRe.FindAllStringSubmatch(listing, -1) {
		if m[1] == name && !slices.Contains(ids, m[2]) {
			ids = append(ids, m[2])
		}
	}
	return ids
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
