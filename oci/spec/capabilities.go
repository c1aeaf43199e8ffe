package spec

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// knownCapabilities are the capabilities of Linux up to 6.x, in kernel
// order.
var knownCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// defaultCapabilities is containerd's (and Docker's) default set.
var defaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// normalizeCapability spells a capability as the kernel headers do:
// upper case with the CAP_ prefix. "ALL" stays "ALL".
func normalizeCapability(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "ALL" || strings.HasPrefix(s, "CAP_") {
		return s
	}
	return "CAP_" + s
}

type capSet map[string]bool

func (s capSet) sorted() []string {
	out := make([]string, 0, len(s))
	for c := range s {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// capabilities computes the container's capability sets. Privileged gets
// all the daemon holds. Otherwise the default set, with "ALL" in add or
// drop applied before the individual names, as containerd does (add ALL +
// drop X is everything but X; drop ALL + add X is X alone). Capabilities
// reached through the privileged flag, "ALL" or the default set are
// limited to what the daemon holds, and the rest returned as withheld,
// because asking the kernel for one the daemon lacks fails the start. A
// capability the request names is an error when the daemon lacks it: the
// workload asked for it explicitly and would not work without it.
func capabilities(sc *runtimeapi.LinuxContainerSecurityContext, host []string) (*specs.LinuxCapabilities, []string, error) {
	held := capSet{}
	for _, c := range host {
		held[normalizeCapability(c)] = true
	}
	set := capSet{}
	withheld := capSet{}
	grant := func(cs []string) {
		for _, c := range cs {
			if held[c] {
				set[c] = true
			} else {
				withheld[c] = true
			}
		}
	}

	var ambient []string
	if sc.GetPrivileged() {
		for c := range held {
			set[c] = true
		}
		grant(knownCapabilities)
	} else {
		req := sc.GetCapabilities()
		add, err := capabilityNames(scField+"capabilities.add_capabilities", req.GetAddCapabilities(), true)
		if err != nil {
			return nil, nil, err
		}
		drop, err := capabilityNames(scField+"capabilities.drop_capabilities", req.GetDropCapabilities(), true)
		if err != nil {
			return nil, nil, err
		}
		if ambient, err = capabilityNames(scField+"capabilities.add_ambient_capabilities", req.GetAddAmbientCapabilities(), false); err != nil {
			return nil, nil, err
		}

		grant(defaultCapabilities)
		if slices.Contains(add, "ALL") {
			for c := range held {
				set[c] = true
			}
			grant(knownCapabilities)
		}
		if slices.Contains(drop, "ALL") {
			clear(set)
			clear(withheld)
		}
		explicit := func(field string, cs []string) error {
			for _, c := range cs {
				if c == "ALL" {
					continue
				}
				if !held[c] {
					return fieldErr(scField+"capabilities."+field, "%s is not held by the container runtime and cannot be granted", c)
				}
				set[c] = true
			}
			return nil
		}
		if err := explicit("add_capabilities", add); err != nil {
			return nil, nil, err
		}
		if err := explicit("add_ambient_capabilities", ambient); err != nil {
			return nil, nil, err
		}
		for _, c := range drop {
			if slices.Contains(ambient, c) {
				return nil, nil, fieldErr(scField+"capabilities.add_ambient_capabilities", "%s is also dropped", c)
			}
			delete(set, c)
			delete(withheld, c)
		}
	}
	for c := range set {
		delete(withheld, c)
	}

	all := set.sorted()
	caps := &specs.LinuxCapabilities{
		Bounding:  all,
		Effective: slices.Clone(all),
		Permitted: slices.Clone(all),
	}
	if len(ambient) > 0 {
		// The kernel raises an ambient capability only if it is both
		// permitted and inheritable.
		slices.Sort(ambient)
		ambient = slices.Compact(ambient)
		caps.Ambient = ambient
		caps.Inheritable = slices.Clone(ambient)
	}
	var w []string
	if len(withheld) > 0 {
		w = withheld.sorted()
	}
	return caps, w, nil
}

// capabilityNames normalizes and checks a list of capability names.
func capabilityNames(field string, names []string, allowAll bool) ([]string, error) {
	out := make([]string, 0, len(names))
	for i, n := range names {
		c := normalizeCapability(n)
		if c == "ALL" {
			if !allowAll {
				return nil, fieldErr(indexed(field, i), "ALL is not allowed here")
			}
		} else if !slices.Contains(knownCapabilities, c) {
			return nil, fieldErr(indexed(field, i), "unknown capability %q", n)
		}
		out = append(out, c)
	}
	return out, nil
}
