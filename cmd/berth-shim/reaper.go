package main

import (
	"bytes"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The shim is a child subreaper: processes that lose their parent below it
// (a hook's children, processes of a container that shares the host's PID
// namespace, an exec'd command's orphans outside a PID namespace) become its
// children, and it must reap them or they stay zombies.
//
// It cannot simply wait(-1): the shim waits for its own children by PID
// (runtime commands, containers' init, exec'd processes), and a wait(-1)
// would steal those exit statuses. So the reaper
// only reaps zombie children that nobody claims: one seen as a zombie in two
// sweeps orphanGrace apart, and not a process the shim tracks. Every owned
// child is waited for within microseconds of its exit, so a zombie that
// lasts that long is an orphan.

const orphanGrace = 3 * time.Second

type reaper struct {
	mu      sync.Mutex
	tracked map[int]bool // PIDs the shim waits for itself
	seen    map[int]time.Time
}

func newReaper() (*reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	r := &reaper{tracked: map[int]bool{}, seen: map[int]time.Time{}}
	ch := make(chan os.Signal, 32)
	signal.Notify(ch, unix.SIGCHLD)
	go r.loop(ch)
	return r, nil
}

// track marks pid as waited for by its owner; untrack ends that.
func (r *reaper) track(pid int) {
	r.mu.Lock()
	r.tracked[pid] = true
	r.mu.Unlock()
}

func (r *reaper) untrack(pid int) {
	r.mu.Lock()
	delete(r.tracked, pid)
	r.mu.Unlock()
}

func (r *reaper) loop(ch <-chan os.Signal) {
	var timer <-chan time.Time
	for {
		select {
		case <-ch:
			if timer == nil {
				timer = time.After(orphanGrace)
			}
		case <-timer:
			timer = nil
			if r.sweep() {
				timer = time.After(orphanGrace)
			}
		}
	}
}

// sweep reaps orphaned zombies and reports whether zombies are left to look
// at again.
func (r *reaper) sweep() bool {
	now := time.Now()
	zombies := zombieChildren()
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid := range r.seen {
		if !zombies[pid] {
			delete(r.seen, pid)
		}
	}
	for pid := range zombies {
		if r.tracked[pid] {
			continue
		}
		first, ok := r.seen[pid]
		if !ok {
			r.seen[pid] = now
			continue
		}
		if now.Sub(first) < orphanGrace {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			log.Printf("reaped orphan pid %d (%s)", pid, describeWait(ws))
		}
		delete(r.seen, pid)
	}
	return len(r.seen) > 0
}

// zombieChildren lists the shim's children that are zombies. Children are
// listed per thread (/proc/self/task/*/children).
func zombieChildren() map[int]bool {
	out := map[int]bool{}
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			pid, err := strconv.Atoi(string(f))
			if err != nil {
				continue
			}
			if st, _, ok := procStat(pid); ok && st == 'Z' {
				out[pid] = true
			}
		}
	}
	return out
}

// procStat returns a process's state letter and parent PID from
// /proc/<pid>/stat.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], ppid, true
}

func describeWait(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "killed by signal " + unix.SignalName(ws.Signal())
	}
	return "status " + strconv.Itoa(int(ws))
}
