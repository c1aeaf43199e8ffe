package main

import (
	"os"
	"regexp"
	"slices"
)

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
