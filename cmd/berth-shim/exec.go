package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// execSync runs a command in the running container with the restrictions of
// its init (user, capabilities, no_new_privs, AppArmor, SELinux label; the
// namespaces, cgroup and seccomp come with joining the container), collects
// at most OutputCap bytes of each stream, and kills the command with all its
// descendants when it outlives the timeout. It returns only after the
// command was reaped.
func (c *container) execSync(req *api.ExecSyncRequest) (*api.ExecSyncResponse, error) {
	if st := c.state(); st.Status != api.StatusRunning {
		return nil, api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s is %s, not running", c.id, st.Status))
	}
	limit := req.OutputCap
	if limit == 0 {
		limit = api.DefaultExecOutputCap
	}
	limit = min(limit, api.MaxExecOutputCap)

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	var p execProc
	proc, err := c.execProcess(req.Cmd, req.Env, false, 0, 0)
	if err == nil {
		p, _, err = c.h.exec(proc, procIO{stdout: outW, stderr: errW})
	}
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}

	stdout := &capBuffer{max: limit}
	stderr := &capBuffer{max: limit}
	var io copiers
	io.add(outR, stdout)
	io.add(errR, stderr)

	type result struct {
		code int32
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, _, err := p.wait()
		done <- result{code, err}
	}()
	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(req.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var r result
	timedOut := false
	select {
	case r = <-done:
	case <-timeout:
		timedOut = true
		c.killTree(p)
		r = <-done
	}
	io.wait(ioDrainTimeout)
	if r.err != nil {
		return nil, fmt.Errorf("exec in %s: %v", c.id, r.err)
	}
	return &api.ExecSyncResponse{
		ExitCode:        r.code,
		Stdout:          stdout.buf,
		Stderr:          stderr.buf,
		StdoutTruncated: stdout.truncated,
		StderrTruncated: stderr.truncated,
		TimedOut:        timedOut,
	}, nil
}

// killTree SIGKILLs the exec'd process and all its descendants among the
// container's processes. Everything is stopped first (SIGSTOP), the process
// itself before its descendants: a stopped process can neither fork nor
// react to its children's death (a shell would report it and carry on), and
// the parent links stay intact until the whole tree is known. The scan
// repeats while it finds processes not yet stopped (forked meanwhile).
func (c *container) killTree(p execProc) {
	pid := p.pid()
	_ = p.signal(unix.SIGSTOP)
	stopped := map[int]bool{}
	for range 10 {
		fresh := false
		for _, d := range c.descendants(pid) {
			if !stopped[d] {
				_ = unix.Kill(d, unix.SIGSTOP)
				stopped[d] = true
				fresh = true
			}
		}
		if !fresh {
			break
		}
	}
	for d := range stopped {
		_ = unix.Kill(d, unix.SIGKILL)
	}
	_ = p.signal(unix.SIGKILL)
}

// descendants lists the live descendants of pid among the container's
// processes.
func (c *container) descendants(pid int) []int {
	pids, err := c.h.processes()
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, p := range pids {
		if state, ppid, ok := procStat(p); ok && state != 'Z' {
			children[ppid] = append(children[ppid], p)
		}
	}
	var desc []int
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		desc = append(desc, p)
		queue = append(queue, children[p]...)
	}
	return desc
}

// execProcess is the container's process running cmd instead, with env
// added, on a terminal of width x height with tty (ctrProcess.execProcessJSON).
func (c *container) execProcess(cmd, env []string, tty bool, width, height uint16) ([]byte, error) {
	return c.spec.Process.execProcessJSON(cmd, mergeEnv(c.spec.Process.Env, env), tty, width, height)
}

// mergeEnv appends extra to base; a name set in extra replaces base's.
func mergeEnv(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	names := map[string]bool{}
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "=")
		names[name] = true
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, e := range base {
		name, _, _ := strings.Cut(e, "=")
		if !names[name] {
			out = append(out, e)
		}
	}
	return append(out, extra...)
}
