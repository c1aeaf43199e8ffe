package spec

import (
	"slices"
	"strconv"
	"strings"
)

// ipcSysctls are the sysctls of the IPC namespace, exactly the set
// libcontainer accepts; fs.mqueue.* belongs to it too.
var ipcSysctls = []string{
	"kernel.msgmax",
	"kernel.msgmnb",
	"kernel.msgmni",
	"kernel.sem",
	"kernel.shmall",
	"kernel.shmmax",
	"kernel.shmmni",
	"kernel.shm_rmid_forced",
}

const (
	maxSysctlName  = 256
	maxSysctlValue = 4096 // one page: what a /proc/sys write takes
)

// ValidateSysctls checks a pod's sysctls (PodSandboxConfig.linux.sysctls)
// for a pod with or without the node's network and IPC namespaces. Only
// sysctls of a namespace the pod has to itself are allowed: net.* with its
// own network namespace, the IPC ones (kernel.shm*, kernel.msg*, kernel.sem,
// fs.mqueue.*) with its own IPC namespace; anything else would change the
// node. Names and values are checked so that no value can smuggle a second
// setting or a path out of /proc/sys.
func ValidateSysctls(sysctls map[string]string, hostNet, hostIPC bool) error {
	return validateSysctls("linux.sysctls", sysctls, hostNet, hostIPC)
}

func validateSysctls(field string, sysctls map[string]string, hostNet, hostIPC bool) error {
	names := make([]string, 0, len(sysctls))
	for k := range sysctls {
		names = append(names, k)
	}
	slices.Sort(names) // the same error every time
	for _, name := range names {
		f := field + "[" + strconv.Quote(name) + "]"
		if err := checkSysctlName(name); err != nil {
			return fieldErr(f, "%v", err)
		}
		if err := checkSysctlValue(sysctls[name]); err != nil {
			return fieldErr(f, "%v", err)
		}
		switch dotted := sysctlDotted(name); {
		case slices.Contains(ipcSysctls, dotted) || strings.HasPrefix(dotted, "fs.mqueue."):
			if hostIPC {
				return fieldErr(f, "not allowed with the host's IPC namespace")
			}
		case strings.HasPrefix(dotted, "net."):
			if hostNet {
				return fieldErr(f, "not allowed with the host's network namespace")
			}
		default:
			return fieldErr(f, "not a namespaced sysctl: setting it would change the node")
		}
	}
	return nil
}

type sysctlError string

func (e sysctlError) Error() string { return string(e) }

// checkSysctlName allows lower-case letters, digits, '_' and '-' in
// segments separated by '.' or '/'. No segment may be empty, so no name
// holds "..", starts or ends with a separator, or climbs out of /proc/sys.
func checkSysctlName(name string) error {
	if name == "" || len(name) > maxSysctlName {
		return sysctlError("the name must have 1 to 256 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/') {
			return sysctlError("the name may hold only a-z, 0-9, '_', '-', '.' and '/'")
		}
	}
	if !strings.ContainsAny(name, "./") {
		return sysctlError("the name has no separator")
	}
	prev := byte('.')
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c == '.' || c == '/') && (prev == '.' || prev == '/') {
			return sysctlError("the name has an empty segment")
		}
		prev = c
	}
	if prev == '.' || prev == '/' {
		return sysctlError("the name ends with a separator")
	}
	return nil
}

// checkSysctlValue refuses what could end one setting and start another
// (newline, NUL, '=') and other control characters; tabs and spaces
// separate numbers in values like net.ipv4.ip_local_port_range.
func checkSysctlValue(v string) error {
	if len(v) > maxSysctlValue {
		return sysctlError("the value is longer than 4096 bytes")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '=' || c == 0x7f || (c < 0x20 && c != '\t') {
			return sysctlError("the value may not hold '=', a newline, NUL or other control characters")
		}
	}
	return nil
}

// sysctlDotted gives a name in the dotted form: a name whose first
// separator is '/' uses '/' between segments and may have dots inside one
// (net/ipv4/conf/eth0.100/forwarding), so the two swap, as libcontainer
// does.
func sysctlDotted(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}
