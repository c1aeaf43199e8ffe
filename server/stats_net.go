package server

import (
	"fmt"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultInterface is the interface CNI plugins give a pod by convention.
const defaultInterface = "eth0"

// netDevStats is one interface's line of /proc/net/dev.
type netDevStats struct {
	name                string
	rxBytes, rxPackets  uint64
	rxErrors, rxDropped uint64
	txBytes, txPackets  uint64
	txErrors, txDropped uint64
}

// parseNetDev reads the text of /proc/net/dev: two header lines, then
// "name: rx bytes packets errs drop fifo frame compressed multicast tx
// bytes packets errs drop fifo colls carrier compressed" per interface.
func parseNetDev(text string) ([]netDevStats, error) {
	var out []netDevStats
	for i, line := range strings.Split(text, "\n") {
		if i < 2 || strings.TrimSpace(line) == "" {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("/proc/net/dev line %d: no interface name: %q", i+1, line)
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("/proc/net/dev line %d: %d fields, want 16: %q", i+1, len(f), line)
		}
		var n [16]uint64
		for j := range n {
			v, err := strconv.ParseUint(f[j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/dev line %d: field %d: %w", i+1, j+1, err)
			}
			n[j] = v
		}
		out = append(out, netDevStats{
			name:    strings.TrimSpace(name),
			rxBytes: n[0], rxPackets: n[1], rxErrors: n[2], rxDropped: n[3],
			txBytes: n[8], txPackets: n[9], txErrors: n[10], txDropped: n[11],
		})
	}
	return out, nil
}

// networkUsage is the CRI form of a pod's interfaces: eth0 as the default
// one, every interface but loopback in the list.
func networkUsage(ts int64, ifaces []netDevStats) *runtimeapi.NetworkUsage {
	u := &runtimeapi.NetworkUsage{Timestamp: ts}
	for _, i := range ifaces {
		if i.name == "lo" {
			continue
		}
		iu := &runtimeapi.NetworkInterfaceUsage{
			Name:     i.name,
			RxBytes:  &runtimeapi.UInt64Value{Value: i.rxBytes},
			RxErrors: &runtimeapi.UInt64Value{Value: i.rxErrors},
			TxBytes:  &runtimeapi.UInt64Value{Value: i.txBytes},
			TxErrors: &runtimeapi.UInt64Value{Value: i.txErrors},
		}
		if i.name == defaultInterface {
			u.DefaultInterface = iu
		}
		u.Interfaces = append(u.Interfaces, iu)
	}
	return u
}
