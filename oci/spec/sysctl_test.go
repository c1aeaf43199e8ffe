package spec

import (
	"strings"
	"testing"
)

func TestValidateSysctls(t *testing.T) {
	for _, tc := range []struct {
		name             string
		sysctls          map[string]string
		hostNet, hostIPC bool
		err              string
	}{
		{name: "none"},
		{name: "kubelet safe set", sysctls: map[string]string{
			"kernel.shm_rmid_forced":              "1",
			"net.ipv4.ip_local_port_range":        "32768\t60999",
			"net.ipv4.tcp_syncookies":             "1",
			"net.ipv4.ping_group_range":           "0 2147483647",
			"net.ipv4.ip_unprivileged_port_start": "0",
		}},
		{name: "ipc set", sysctls: map[string]string{"kernel.msgmax": "8192", "kernel.sem": "250 32000 32 128", "fs.mqueue.msg_max": "20", "kernel.shmmax": "1"}},
		{name: "slash form", sysctls: map[string]string{"net/ipv4/conf/eth0.100/forwarding": "1"}},
		{name: "ipc with host network", hostNet: true, sysctls: map[string]string{"kernel.shmmni": "100"}},
		{name: "net with host network", hostNet: true, sysctls: map[string]string{"net.core.somaxconn": "1024"}, err: `linux.sysctls["net.core.somaxconn"]: not allowed with the host's network namespace`},
		{name: "ipc with host ipc", hostIPC: true, sysctls: map[string]string{"kernel.msgmnb": "1"}, err: `linux.sysctls["kernel.msgmnb"]: not allowed with the host's IPC namespace`},
		{name: "mqueue with host ipc", hostIPC: true, sysctls: map[string]string{"fs.mqueue.queues_max": "1"}, err: `linux.sysctls["fs.mqueue.queues_max"]: not allowed with the host's IPC`},
		{name: "net with host ipc", hostIPC: true, sysctls: map[string]string{"net.ipv4.tcp_syncookies": "1"}},
		{name: "node-wide", sysctls: map[string]string{"vm.overcommit_memory": "1"}, err: `linux.sysctls["vm.overcommit_memory"]: not a namespaced sysctl`},
		{name: "kernel non-ipc", sysctls: map[string]string{"kernel.shm_next_id": "1"}, err: `linux.sysctls["kernel.shm_next_id"]: not a namespaced sysctl`},
		{name: "hostname", sysctls: map[string]string{"kernel.hostname": "x"}, err: `linux.sysctls["kernel.hostname"]: not a namespaced sysctl`},
		{name: "upper case", sysctls: map[string]string{"NET.core.x": "1"}, err: `linux.sysctls["NET.core.x"]: the name may hold only`},
		{name: "equals in name", sysctls: map[string]string{"net.core.x=1\nkernel.core_pattern": "1"}, err: "linux.sysctls[\"net.core.x=1\\nkernel.core_pattern\"]: the name may hold only"},
		{name: "space in name", sysctls: map[string]string{"net.core. x": "1"}, err: `linux.sysctls["net.core. x"]: the name may hold only`},
		{name: "dotdot", sysctls: map[string]string{"net/../../kernel/core_pattern": "x"}, err: `linux.sysctls["net/../../kernel/core_pattern"]: the name has an empty segment`},
		{name: "leading dot", sysctls: map[string]string{".net.x": "1"}, err: `linux.sysctls[".net.x"]: the name has an empty segment`},
		{name: "trailing dot", sysctls: map[string]string{"net.x.": "1"}, err: `linux.sysctls["net.x."]: the name ends with a separator`},
		{name: "no separator", sysctls: map[string]string{"net": "1"}, err: `linux.sysctls["net"]: the name has no separator`},
		{name: "empty name", sysctls: map[string]string{"": "1"}, err: `linux.sysctls[""]: the name must have`},
		{name: "long name", sysctls: map[string]string{"net." + strings.Repeat("a", 300): "1"}, err: `linux.sysctls["net.aaaa`},
		{name: "newline in value", sysctls: map[string]string{"net.core.somaxconn": "1\nkernel.core_pattern=|/evil"}, err: `linux.sysctls["net.core.somaxconn"]: the value may not hold`},
		{name: "equals in value", sysctls: map[string]string{"net.core.somaxconn": "1 kernel.x=2"}, err: `linux.sysctls["net.core.somaxconn"]: the value may not hold`},
		{name: "NUL in value", sysctls: map[string]string{"net.core.somaxconn": "1\x00"}, err: `linux.sysctls["net.core.somaxconn"]: the value may not hold`},
		{name: "CR in value", sysctls: map[string]string{"net.core.somaxconn": "1\r"}, err: `linux.sysctls["net.core.somaxconn"]: the value may not hold`},
		{name: "long value", sysctls: map[string]string{"net.ipv4.ip_local_reserved_ports": strings.Repeat("1,", 3000)}, err: `linux.sysctls["net.ipv4.ip_local_reserved_ports"]: the value is longer than 4096 bytes`},
		{name: "first error in name order", sysctls: map[string]string{"vm.b": "1", "vm.a": "1"}, err: `linux.sysctls["vm.a"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantInvalid(t, ValidateSysctls(tc.sysctls, tc.hostNet, tc.hostIPC), tc.err)
		})
	}
}

func TestSysctlDotted(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":               "net.ipv4.ip_forward",
		"net/ipv4/ip_forward":               "net.ipv4.ip_forward",
		"net/ipv4/conf/eth0.100/forwarding": "net.ipv4.conf.eth0/100.forwarding",
		"net.ipv4.conf.eth0/100.forwarding": "net.ipv4.conf.eth0/100.forwarding",
	} {
		if got := sysctlDotted(in); got != want {
			t.Errorf("sysctlDotted(%q) = %q, want %q", in, got, want)
		}
	}
}
