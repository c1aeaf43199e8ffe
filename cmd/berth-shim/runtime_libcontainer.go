package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runc/libcontainer/utils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// lcRuntime runs containers with libcontainer inside the shim: every
// container's init is the shim's own child ("berth-shim init").
type lcRuntime struct {
	root   string // libcontainer's state root (api.LibcontainerDir)
	reaper *reaper
}

func (r *lcRuntime) close() { os.Remove(r.root) }

// lcContainer is a container libcontainer created in this process.
type lcContainer struct {
	id     string
	lc     *libcontainer.Container
	init   *libcontainer.Process
	paths  map[string]string
	reaper *reaper
}

func (r *lcRuntime) create(id, bundle string, spec *specs.Spec, pio procIO) (_ ctrHandle, _ *os.File, retErr error) {
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       id,
		UseSystemdCgroup: systemdCgroupPath(spec.Linux.CgroupsPath),
		Spec:             spec,
	})
	if err != nil {
		return nil, nil, api.Errorf(api.ErrInvalid, "bundle: config.json: "+err.Error())
	}
	for i, l := range cfg.Labels {
		if strings.HasPrefix(l, "bundle=") {
			cfg.Labels[i] = "bundle=" + bundle
		}
	}

	lc, err := libcontainer.Create(r.root, id, cfg)
	if errors.Is(err, libcontainer.ErrExist) {
		// Left behind by a shim that died in this directory: remove it if
		// it does not run any more.
		if old, lerr := libcontainer.Load(r.root, id); lerr == nil {
			if s, _ := old.Status(); s == libcontainer.Stopped {
				if derr := old.Destroy(); derr == nil {
					lc, err = libcontainer.Create(r.root, id, cfg)
				}
			}
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create container %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			if err := lc.Destroy(); err != nil {
				log.Printf("container %s: destroy after failed create: %v", id, err)
			}
		}
	}()

	p := newProcess(spec.Process)
	p.Init = true
	consoleCh, closeConsole, err := setStdio(p, pio)
	if err != nil {
		return nil, nil, err
	}
	defer closeConsole()
	if err := lc.Start(p); err != nil {
		return nil, nil, fmt.Errorf("start init of %s: %w", id, err)
	}
	pid, _ := p.Pid()
	r.reaper.track(pid)
	h := &lcContainer{id: id, lc: lc, init: p, reaper: r.reaper}
	defer func() {
		if retErr != nil {
			p.Signal(unix.SIGKILL)
			h.wait()
		}
	}()
	var master *os.File
	if consoleCh != nil {
		if master, err = awaitConsole(consoleCh); err != nil {
			return nil, nil, fmt.Errorf("receive the console of %s: %w", id, err)
		}
	}
	if st, err := lc.State(); err == nil {
		h.paths = st.CgroupPaths
	}
	return h, master, nil
}

// setStdio gives p the streams of pio, or a console socket whose far end
// delivers the pty master on the returned channel; closeConsole closes the
// process's end of that socket once it has it.
func setStdio(p *libcontainer.Process, pio procIO) (_ chan consoleResult, closeConsole func(), _ error) {
	if !pio.tty {
		// Typed nils would look like streams to libcontainer.
		if pio.stdin != nil {
			p.Stdin = pio.stdin
		}
		if pio.stdout != nil {
			p.Stdout = pio.stdout
		}
		if pio.stderr != nil {
			p.Stderr = pio.stderr
		}
		return nil, func() {}, nil
	}
	parent, child, err := utils.NewSockPair("console")
	if err != nil {
		return nil, nil, err
	}
	p.ConsoleSocket = child
	ch := make(chan consoleResult, 1)
	go func() {
		defer parent.Close()
		f, err := utils.RecvFile(parent)
		ch <- consoleResult{master: f, err: err}
	}()
	return ch, func() { child.Close() }, nil
}

// awaitConsole waits (bounded) for the pty master.
func awaitConsole(ch chan consoleResult) (*os.File, error) {
	select {
	case r := <-ch:
		return r.master, r.err
	case <-time.After(consoleTimeout):
		go func() {
			if r := <-ch; r.master != nil {
				r.master.Close()
			}
		}()
		return nil, errors.New("timed out")
	}
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

func (h *lcContainer) pid() int { pid, _ := h.init.Pid(); return pid }

func (h *lcContainer) start() error {
	if err := h.lc.Exec(); err != nil {
		return fmt.Errorf("start container %s: %w", h.id, err)
	}
	return nil
}

func (h *lcContainer) wait() (int32, string, error) {
	return lcWait(h.init, h.reaper)
}

// lcWait reaps a process libcontainer started and ends its tracking.
func lcWait(p *libcontainer.Process, r *reaper) (int32, string, error) {
	ps, err := p.Wait()
	if pid, perr := p.Pid(); perr == nil {
		r.untrack(pid)
	}
	code, msg := exitStatus(ps, err)
	if ps == nil {
		return code, msg, fmt.Errorf("wait: %v", err)
	}
	return code, msg, nil
}

// signal signals init first: SIGKILL to the init of a PID namespace ends
// all of it.
func (h *lcContainer) signal(sig unix.Signal, all bool) error {
	err := h.lc.Signal(sig)
	if all {
		pids, _ := h.lc.Processes()
		for _, pid := range pids {
			_ = unix.Kill(pid, sig)
		}
	}
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) || errors.Is(err, os.ErrProcessDone) {
			return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s is not running", h.id))
		}
		return fmt.Errorf("signal container %s: %w", h.id, err)
	}
	return nil
}

func (h *lcContainer) processes() ([]int, error) { return h.lc.Processes() }

func (h *lcContainer) cgroupPaths() map[string]string { return h.paths }

// lcExec is a process libcontainer exec'd into a container.
type lcExec struct {
	p      *libcontainer.Process
	reaper *reaper
}

func (h *lcContainer) exec(sp *specs.Process, pio procIO) (_ execProc, _ *os.File, retErr error) {
	p := newProcess(sp)
	p.Init = false
	consoleCh, closeConsole, err := setStdio(p, pio)
	if err != nil {
		return nil, nil, err
	}
	err = h.lc.Run(p)
	closeConsole()
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", h.id, err)
	}
	pid, _ := p.Pid()
	h.reaper.track(pid)
	e := &lcExec{p: p, reaper: h.reaper}
	var master *os.File
	if consoleCh != nil {
		if master, err = awaitConsole(consoleCh); err != nil {
			p.Signal(unix.SIGKILL)
			e.wait()
			return nil, nil, fmt.Errorf("exec in %s: receive the pty: %w", h.id, err)
		}
	}
	return e, master, nil
}

func (e *lcExec) pid() int                     { pid, _ := e.p.Pid(); return pid }
func (e *lcExec) signal(sig unix.Signal) error { return e.p.Signal(sig) }
func (e *lcExec) wait() (int32, string, error) { return lcWait(e.p, e.reaper) }

// update writes r to the container's cgroups the way runc's update command
// does: libcontainer's Set (putting the old values back if the kernel
// refuses one), recorded in its state.json too.
func (h *lcContainer) update(spec *specs.Spec, r *specs.LinuxResources) error {
	cfg, err := updatedConfig(h.lc.Config(), h.id, spec, r)
	if err != nil {
		return api.Errorf(api.ErrInvalid, "resources: "+err.Error())
	}
	if err := h.lc.Set(cfg); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited", h.id))
		}
		return err
	}
	return nil
}

func (h *lcContainer) destroy() error {
	if err := h.lc.Destroy(); err != nil {
		return fmt.Errorf("destroy container %s: %w", h.id, err)
	}
	return nil
}
