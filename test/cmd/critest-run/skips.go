package main

import (
	"regexp"
	"strings"
)

// skip is a group of critest specs that cannot run on the nodes berth is
// tested on, with the reason. docs/conformance.md lists the same.
type skip struct {
	pattern string // a regular expression over the spec's full text
	reason  string
}

// skips are the only specs the suite does not run.
var skips = []skip{
	{`\[k8s\.io\] AppArmor `, "the kernel has no AppArmor"},
	{`\[k8s\.io\] NRI `, "berthd has no NRI socket yet"},
	{`public image with digest should be pulled and removed`,
		"the image is named by a fixed upstream digest; a rebuilt image cannot have it and no public registry is reachable"},
}

// skipRegexp is the --ginkgo.skip value for skips.
func skipRegexp() string {
	ps := make([]string, len(skips))
	for i, s := range skips {
		ps[i] = "(" + s.pattern + ")"
	}
	re := strings.Join(ps, "|")
	regexp.MustCompile(re) // a typo above is a bug, caught by the test
	return re
}
