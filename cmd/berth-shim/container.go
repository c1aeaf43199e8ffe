package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/console"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runc/libcontainer/utils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
	"github.com/berth-runtime/berth/pkg/crilog"
)

const (
	// ioDrainTimeout bounds how long the exit of a container or exec waits
	// for its output to end after the process itself exited.
	ioDrainTimeout = 2 * time.Second
	// killTimeout bounds how long Delete waits for a killed container.
	killTimeout = 30 * time.Second
	// consoleTimeout bounds the wait for the pty master from runc init.
	consoleTimeout = 10 * time.Second
)

// container is one container of the pod, from Create to Delete.
type container struct {
	id   string
	shim *server

	lc     *libcontainer.Container
	init   *libcontainer.Process
	spec   *specs.Spec
	log    *crilog.Writer // nil without a log path
	stdin  io.Closer      // the stdin pipe or the pty master, kept for attach
	io     copiers
	cgroup map[string]string // libcontainer's cgroup paths, for the OOM count

	// streams: attach clients fed from the output, exec sessions (session.go)
	streams streams

	// op serialises the calls that change the container (Create, Start,
	// Delete); State, Wait and Signal do not take it.
	op      sync.Mutex
	deleted bool

	// mu guards st. st changes only after the new state is on disk, so no
	// answer ever reports a state that a restart would not find.
	mu     sync.Mutex
	st     api.ContainerState
	exited chan struct{} // closed once the exit is recorded
}

func (c *container) state() api.ContainerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// record writes st (see api.WriteState), then makes it the container's state.
func (c *container) record(update func(st *api.ContainerState)) api.ContainerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	update(&st)
	if err := api.WriteState(c.shim.dir, st); err != nil {
		// The answer still tells the truth; only a reader of the file after
		// the shim's death could be misled, so say it loudly.
		log.Printf("container %s: %v", c.id, err)
	}
	c.st = st
	return st
}

// loadSpec reads the bundle's config.json and makes its relative paths
// absolute: specconv resolves them against the working directory, which a
// shim serving several bundles at once cannot switch.
func loadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, api.Errorf(api.ErrInvalid, "bundle: "+err.Error())
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json: "+err.Error())
	}
	switch {
	case spec.Process == nil:
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json has no process")
	case len(spec.Process.Args) == 0:
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json: process.args is empty")
	case spec.Root == nil || spec.Root.Path == "":
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json has no root.path")
	case spec.Linux == nil:
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json has no linux section")
	}
	if !filepath.IsAbs(spec.Root.Path) {
		spec.Root.Path = filepath.Join(bundle, spec.Root.Path)
	}
	if fi, err := os.Stat(spec.Root.Path); err != nil || !fi.IsDir() {
		return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("bundle: root.path %s is not a directory", spec.Root.Path))
	}
	for i, m := range spec.Mounts {
		if m.Source != "" && !filepath.IsAbs(m.Source) && isBind(m) {
			spec.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
	return &spec, nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// systemdCgroupPath tells a "slice:prefix:name" cgroupsPath (systemd
// driver) from a path (cgroupfs driver).
func systemdCgroupPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2
}

// newProcess converts the spec's process, as runc does.
func newProcess(p *specs.Process) *libcontainer.Process {
	nnp := p.NoNewPrivileges
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		Label:           p.SelinuxLabel,
		NoNewPrivileges: &nnp,
		AppArmorProfile: p.ApparmorProfile,
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
	}
	if p.ConsoleSize != nil {
		lp.ConsoleWidth = uint16(p.ConsoleSize.Width)
		lp.ConsoleHeight = uint16(p.ConsoleSize.Height)
	}
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding:    c.Bounding,
			Effective:   c.Effective,
			Inheritable: c.Inheritable,
			Permitted:   c.Permitted,
			Ambient:     c.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	return lp
}

// create builds the container and starts its init, which then waits for
// Start. On error everything made is undone.
func (c *container) create(req *api.CreateRequest) (retErr error) {
	spec, err := loadSpec(req.Bundle)
	if err != nil {
		return err
	}
	if spec.Process.Terminal != req.Tty {
		return api.Errorf(api.ErrInvalid, fmt.Sprintf("tty: %v, but the spec's process.terminal is %v", req.Tty, spec.Process.Terminal))
	}
	if err := checkPrivileges(spec.Process); err != nil {
		return err
	}
	c.spec = spec
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       c.id,
		UseSystemdCgroup: systemdCgroupPath(spec.Linux.CgroupsPath),
		Spec:             spec,
	})
	if err != nil {
		return api.Errorf(api.ErrInvalid, "bundle: config.json: "+err.Error())
	}
	for i, l := range cfg.Labels {
		if strings.HasPrefix(l, "bundle=") {
			cfg.Labels[i] = "bundle=" + req.Bundle
		}
	}

	var closers []io.Closer
	defer func() {
		if retErr != nil {
			for _, f := range closers {
				f.Close()
			}
		}
	}()

	var stdout, stderr io.WriteCloser = discard{}, discard{}
	if req.LogPath != "" {
		max := req.MaxLogLineSize
		if max == 0 {
			max = api.DefaultMaxLogLineSize
		}
		w, err := crilog.Open(req.LogPath, max)
		if err != nil {
			return api.Errorf(api.ErrInvalid, "log_path: "+err.Error())
		}
		c.log = w
		closers = append(closers, w)
		stdout, stderr = w.Stream("stdout"), w.Stream("stderr")
	}

	stdout, stderr = c.streams.wrap(stdout, stderr)
	c.streams.stdin, c.streams.stdinOnce = req.Stdin, req.StdinOnce

	lc, err := libcontainer.Create(c.shim.lcRoot, c.id, cfg)
	if errors.Is(err, libcontainer.ErrExist) {
		// Left behind by a shim that died in this directory: remove it if
		// it does not run any more.
		if old, lerr := libcontainer.Load(c.shim.lcRoot, c.id); lerr == nil {
			if s, _ := old.Status(); s == libcontainer.Stopped {
				if derr := old.Destroy(); derr == nil {
					lc, err = libcontainer.Create(c.shim.lcRoot, c.id, cfg)
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create container %s: %w", c.id, err)
	}
	defer func() {
		if retErr != nil {
			if err := lc.Destroy(); err != nil {
				log.Printf("container %s: destroy after failed create: %v", c.id, err)
			}
		}
	}()

	p := newProcess(spec.Process)
	p.Init = true
	var after []io.Closer // the child's ends, closed once it has them
	var consoleCh chan consoleResult
	if req.Tty {
		parent, child, err := utils.NewSockPair("console")
		if err != nil {
			return err
		}
		p.ConsoleSocket = child
		after = append(after, child)
		closers = append(closers, parent)
		consoleCh = make(chan consoleResult, 1)
		go func() { consoleCh <- recvConsole(parent) }()
	} else {
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			return err
		}
		p.Stdout, p.Stderr = outW, errW
		after = append(after, outW, errW)
		closers = append(closers, outR, errR)
		if req.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return err
			}
			p.Stdin = inR
			after = append(after, inR)
			closers = append(closers, inW)
			c.stdin = inW
		}
		c.io.add(outR, stdout)
		c.io.add(errR, stderr)
	}

	err = lc.Start(p)
	for _, f := range after {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("start init of %s: %w", c.id, err)
	}
	c.lc, c.init = lc, p
	pid, _ := p.Pid()
	c.shim.reaper.track(pid)
	defer func() {
		if retErr != nil {
			p.Signal(unix.SIGKILL)
			p.Wait()
			c.shim.reaper.untrack(pid)
		}
	}()

	if consoleCh != nil {
		var r consoleResult
		select {
		case r = <-consoleCh:
		case <-time.After(consoleTimeout):
			r.err = errors.New("timed out")
		}
		if r.err != nil {
			return fmt.Errorf("receive the console of %s: %w", c.id, r.err)
		}
		closers = append(closers, r.master)
		c.stdin = r.master
		c.io.add(r.master, stdout)
		stderr.Close()
	}

	if st, err := lc.State(); err == nil {
		c.cgroup = st.CgroupPaths
	}
	c.record(func(st *api.ContainerState) {
		*st = api.ContainerState{ID: c.id, Status: api.StatusCreated, Pid: pid, CreatedAt: time.Now()}
	})
	go c.waitExit(pid)
	return nil
}

type consoleResult struct {
	master *os.File
	err    error
}

// recvConsole receives the pty master that runc init sends over the console
// socket, and returns it as a pollable file (so that closing it ends a read).
func recvConsole(sock *os.File) consoleResult {
	defer sock.Close()
	f, err := utils.RecvFile(sock)
	if err != nil {
		return consoleResult{err: err}
	}
	defer f.Close()
	// No "\r\n" for "\n" in what is logged.
	if err := console.ClearONLCR(f.Fd()); err != nil {
		return consoleResult{err: err}
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return consoleResult{err: os.NewSyscallError("fcntl", err)}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return consoleResult{err: err}
	}
	return consoleResult{master: os.NewFile(uintptr(fd), "pty-master")}
}

// waitExit reaps the container's init, lets its output drain, and records
// the exit (with the OOM verdict) before anyone is told.
func (c *container) waitExit(pid int) {
	ps, werr := c.init.Wait()
	finished := time.Now()
	c.shim.reaper.untrack(pid)
	code, msg := exitStatus(ps, werr)
	if !c.io.wait(ioDrainTimeout) {
		log.Printf("container %s: output still open %v after exit; closed it", c.id, ioDrainTimeout)
	}
	c.streams.end()
	if c.stdin != nil {
		c.stdin.Close()
	}
	if c.log != nil {
		if n := c.log.Dropped(); n > 0 {
			log.Printf("container %s: %d log records lost: %v", c.id, n, c.log.Err())
		}
		c.log.Close()
	}
	oom, _ := oomKills(c.cgroup)
	st := c.record(func(st *api.ContainerState) {
		st.Status = api.StatusStopped
		st.FinishedAt = finished
		st.ExitCode = code
		st.OOMKilled = oom > 0
		st.Message = msg
	})
	close(c.exited)
	log.Printf("container %s exited: code %d, OOM-killed %v", c.id, st.ExitCode, st.OOMKilled)
}

// exitStatus turns a wait result into a CRI exit code: the status, or
// 128+signal for a process killed by a signal.
func exitStatus(ps *os.ProcessState, err error) (int32, string) {
	if ps == nil {
		return 255, fmt.Sprintf("exit status unknown: %v", err)
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return int32(ps.ExitCode()), ""
	}
	if ws.Signaled() {
		return 128 + int32(ws.Signal()), "killed by signal " + unix.SignalName(ws.Signal())
	}
	return int32(ws.ExitStatus()), ""
}

// start lets init exec the user process.
func (c *container) start() error {
	if st := c.state(); st.Status != api.StatusCreated {
		return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s is %s, not created", c.id, st.Status))
	}
	if err := c.lc.Exec(); err != nil {
		return fmt.Errorf("start container %s: %w", c.id, err)
	}
	now := time.Now()
	c.record(func(st *api.ContainerState) {
		switch st.Status {
		case api.StatusCreated:
			st.Status = api.StatusRunning
			st.StartedAt = now
		case api.StatusStopped:
			// It ran and exited before the start was recorded.
			st.StartedAt = now
			if st.FinishedAt.Before(now) {
				st.StartedAt = st.FinishedAt
			}
		}
	})
	return nil
}

// signal sends sig to init, or with all to every process of the container
// (init first: SIGKILL to the init of a PID namespace ends all of it).
func (c *container) signal(sig unix.Signal, all bool) error {
	select {
	case <-c.exited:
		return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited", c.id))
	default:
	}
	err := c.lc.Signal(sig)
	if all {
		pids, _ := c.lc.Processes()
		for _, pid := range pids {
			_ = unix.Kill(pid, sig)
		}
	}
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) || errors.Is(err, os.ErrProcessDone) {
			return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s is not running", c.id))
		}
		return fmt.Errorf("signal container %s: %w", c.id, err)
	}
	return nil
}

// remove kills the container if needed and destroys it.
func (c *container) remove(force bool) error {
	select {
	case <-c.exited:
	default:
		if st := c.state(); st.Status == api.StatusRunning && !force {
			return api.Errorf(api.ErrFailedPrecondition, fmt.Sprintf("container %s is running; stop it first or force", c.id))
		}
		if err := c.signal(unix.SIGKILL, true); err != nil && !errors.Is(err, api.ErrNotRunning) {
			return err
		}
		select {
		case <-c.exited:
		case <-time.After(killTimeout):
			return fmt.Errorf("container %s did not exit %v after SIGKILL", c.id, killTimeout)
		}
	}
	if err := c.lc.Destroy(); err != nil {
		return fmt.Errorf("destroy container %s: %w", c.id, err)
	}
	if err := os.RemoveAll(filepath.Join(c.shim.dir, api.ContainersDir, c.id)); err != nil {
		log.Printf("container %s: remove record: %v", c.id, err)
	}
	c.deleted = true
	return nil
}
