package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procInfo is one process as /proc shows it.
type procInfo struct {
	PID, PPID int
	Comm      string
	State     byte
	Argv      []string
}

// exe is the base name of argv[0].
func (p procInfo) exe() string {
	if len(p.Argv) == 0 {
		return ""
	}
	return filepath.Base(p.Argv[0])
}

// arg returns the value after flag in argv ("--pod ID" or "-id ID").
func (p procInfo) arg(flag string) string {
	for i, a := range p.Argv {
		if a == flag && i+1 < len(p.Argv) {
			return p.Argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func (p procInfo) zombie() bool { return p.State == 'Z' || p.State == 'X' }

// listProcs reads every process; ones that exit meanwhile are skipped.
func listProcs() ([]procInfo, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func readProc(pid int) (procInfo, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, err
	}
	p, err := parseStat(string(stat))
	if err != nil {
		return procInfo{}, err
	}
	p.PID = pid
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	for _, a := range bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0}) {
		if len(a) > 0 {
			p.Argv = append(p.Argv, string(a))
		}
	}
	return p, nil
}

// parseStat reads comm, state and ppid of a /proc/PID/stat line.
func parseStat(s string) (procInfo, error) {
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return procInfo{}, errors.New("malformed stat line")
	}
	f := strings.Fields(s[close+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return procInfo{}, errors.New("malformed stat line")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procInfo{}, errors.New("malformed stat line")
	}
	return procInfo{Comm: s[open+1 : close], State: f[0][0], PPID: ppid}, nil
}

// descendsFrom reports whether ancestor is on p's parent chain.
func descendsFrom(p procInfo, byPID map[int]procInfo, ancestor int) bool {
	seen := map[int]bool{}
	for pid := p.PPID; pid > 1 && !seen[pid]; {
		if pid == ancestor {
			return true
		}
		seen[pid] = true
		q, ok := byPID[pid]
		if !ok {
			return false
		}
		pid = q.PPID
	}
	return false
}

func indexByPID(ps []procInfo) map[int]procInfo {
	m := make(map[int]procInfo, len(ps))
	for _, p := range ps {
		m[p.PID] = p
	}
	return m
}

// procMem is a process's resident and proportional set size.
type procMem struct{ RSS, PSS int64 }

// smapsRollup reads Rss and Pss of a process from /proc/PID/smaps_rollup.
func smapsRollup(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return procMem{}, err
	}
	return parseSmapsRollup(string(b))
}

func parseSmapsRollup(s string) (procMem, error) {
	var m procMem
	var rss, pss bool
	for _, line := range strings.Split(s, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "Rss" && key != "Pss") {
			continue
		}
		n, err := kB(val)
		if err != nil {
			return procMem{}, fmt.Errorf("smaps_rollup %s: %w", key, err)
		}
		if key == "Rss" {
			m.RSS, rss = n, true
		} else {
			m.PSS, pss = n, true
		}
	}
	if !rss || !pss {
		return procMem{}, errors.New("smaps_rollup: Rss or Pss missing")
	}
	return m, nil
}

// meminfo holds the fields of /proc/meminfo, in bytes.
type meminfo map[string]int64

// pcpFree is the key readMeminfo adds for the free pages held in per-CPU
// lists, which MemFree does not count (/proc/zoneinfo has them).
const pcpFree = "PcpFree"

// readMeminfo reads /proc/meminfo, and the per-CPU free pages from
// /proc/zoneinfo.
func readMeminfo() (meminfo, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	m, err := parseMeminfo(string(b))
	if err != nil {
		return nil, err
	}
	z, err := os.ReadFile("/proc/zoneinfo")
	if err != nil {
		return nil, err
	}
	pages, err := parsePcpCount(string(z))
	if err != nil {
		return nil, err
	}
	m[pcpFree] = pages * int64(os.Getpagesize())
	return m, nil
}

// parsePcpCount adds up the "count:" lines of /proc/zoneinfo: the pages on
// each CPU's free lists, of every zone.
func parsePcpCount(s string) (int64, error) {
	var n int64
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "count:" {
			continue
		}
		c, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("zoneinfo: malformed count %q", line)
		}
		n += c
	}
	return n, nil
}

// parseMeminfo parses the "Key:   123 kB" lines; fields without a unit
// (the HugePages_ counts) are left out. MemAvailable must be there.
func parseMeminfo(s string) (meminfo, error) {
	m := meminfo{}
	for _, line := range strings.Split(s, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(val, " kB") {
			continue
		}
		n, err := kB(val)
		if err != nil {
			return nil, fmt.Errorf("meminfo %s: %w", key, err)
		}
		m[key] = n
	}
	if _, ok := m["MemAvailable"]; !ok {
		return nil, errors.New("meminfo: no MemAvailable")
	}
	return m, nil
}

// kB parses " 1234 kB" into bytes.
func kB(val string) (int64, error) {
	f := strings.Fields(val)
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("malformed value %q", val)
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed value %q", val)
	}
	return n << 10, nil
}

// becomeSubreaper makes the benchmark the reaper of orphans among its
// descendants: containerd's shims detach from containerd at start, and
// berthd's outlive berthd, and both are then reparented here instead of to
// PID 1, so their parent chain shows they are the benchmark's. The
// returned function stops the reaping of those orphans.
func becomeSubreaper() (stop func(), err error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				reapOrphans()
				return
			case <-sigs:
			case <-tick.C:
			}
			reapOrphans()
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-finished
	}, nil
}

// orphanComms are the names of the processes that can be reparented to the
// benchmark: the shims, and the containers' processes (busybox sleep) when
// a shim is killed. The benchmark's own children (daemons, iptables, ip,
// nft) have other names; they are waited for by os/exec, which must find
// them unreaped.
var orphanComms = map[string]bool{"containerd-shim": true, "berth-shim": true, "sleep": true}

// reapOrphans reaps exited orphans reparented to the benchmark.
func reapOrphans() {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		p, err := parseStat(string(stat))
		if err != nil {
			continue
		}
		if p.PPID == self && p.zombie() && orphanComms[p.Comm] {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}
