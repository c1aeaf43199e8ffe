package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// checkPrivileges refuses, with the field named, what the shim cannot grant
// because it does not hold the privilege itself. libcontainer would fail
// later with messages that do not point at the cause ("operation not
// permitted" from capset, "can't get final child's PID from pipe: EOF" for
// a refused oom_score_adj).
func checkPrivileges(p *ctrProcess) error {
	held, err := ownCapabilities()
	if err != nil {
		return nil // cannot tell; let libcontainer decide
	}
	if c := p.Capabilities; c != nil {
		for _, set := range []struct {
			field string
			names []string
		}{
			{"effective", c.Effective}, {"permitted", c.Permitted},
			{"inheritable", c.Inheritable}, {"ambient", c.Ambient},
		} {
			for _, name := range set.names {
				bit, known := capBits[strings.ToUpper(name)]
				if known && held&(1<<bit) == 0 {
					return api.Errorf(api.ErrInvalid, fmt.Sprintf(
						"bundle: process.capabilities.%s: %s is not held by the runtime", set.field, name))
				}
			}
		}
	}
	if adj := p.OOMScoreAdj; adj != nil && held&(1<<capability.CAP_SYS_RESOURCE) == 0 {
		// Without CAP_SYS_RESOURCE the kernel refuses a value below the one
		// the process already has.
		b, err := os.ReadFile("/proc/self/oom_score_adj")
		if err == nil {
			if own, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && *adj < own {
				return api.Errorf(api.ErrInvalid, fmt.Sprintf(
					"bundle: process.oomScoreAdj: %d is below the runtime's own %d and needs CAP_SYS_RESOURCE, which the runtime does not hold", *adj, own))
			}
		}
	}
	return nil
}

// capBits maps "CAP_NAME" to its number, for the capabilities this build
// knows.
var capBits = func() map[string]uint {
	m := map[string]uint{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = uint(c)
	}
	return m
}()

// ownCapabilities returns the capabilities the shim can hand on: its
// permitted set, limited by its bounding set.
func ownCapabilities() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var prm, bnd uint64
	var found int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte{':'})
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "CapPrm":
			dst = &prm
		case "CapBnd":
			dst = &bnd
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
		if err != nil {
			return 0, err
		}
		*dst = n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("no CapPrm/CapBnd in /proc/self/status")
	}
	return prm & bnd, nil
}
