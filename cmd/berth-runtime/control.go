package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// deleteKillTimeout bounds how long delete waits for a killed container's
// init to go.
const deleteKillTimeout = 10 * time.Second

func load(g globalOpts, id string) (*libcontainer.Container, error) {
	return libcontainer.Load(g.root, id)
}

// loadStatus loads a container and tells its state.
func loadStatus(g globalOpts, id string) (*libcontainer.Container, libcontainer.Status, error) {
	c, err := load(g, id)
	if err != nil {
		return nil, 0, err
	}
	st, err := c.Status()
	return c, st, err
}

// start lets a created container's init exec the user process: "start ID".
func start(g globalOpts, args []string) error {
	pos, err := parseCmd(flag.NewFlagSet("start", flag.ContinueOnError), args, 1, 1)
	if err != nil {
		return err
	}
	c, st, err := loadStatus(g, pos[0])
	if err != nil {
		return err
	}
	if st != libcontainer.Created {
		return fmt.Errorf("cannot start a container in the %s state", st)
	}
	return c.Exec()
}

// kill signals the container's init: "kill [--all] ID SIG". With --all
// every process of the container gets the signal too, init first
// (SIGKILL to the init of a PID namespace ends all of it).
func kill(g globalOpts, args []string) error {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	all := fs.Bool("all", false, "signal every process of the container")
	pos, err := parseCmd(fs, args, 1, 2)
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	if len(pos) == 2 {
		if sig, err = parseSignal(pos[1]); err != nil {
			return err
		}
	}
	c, err := load(g, pos[0])
	if err != nil {
		return err
	}
	err = c.Signal(sig)
	if *all {
		pids, _ := c.Processes()
		for _, pid := range pids {
			_ = unix.Kill(pid, sig)
		}
		if errors.Is(err, libcontainer.ErrNotRunning) {
			err = nil
		}
	}
	return err
}

// parseSignal takes a number or a name, with or without "SIG".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// remove deletes the container's cgroups and state: "delete [--force]
// ID". A created container is killed first, and with --force a running
// one too.
func remove(g globalOpts, args []string) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	force := fs.Bool("force", false, "kill a running container first")
	pos, err := parseCmd(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, st, err := loadStatus(g, pos[0])
	if err != nil {
		return err
	}
	switch {
	case st == libcontainer.Stopped:
	case st == libcontainer.Created || *force:
		if err := killAll(c); err != nil {
			return err
		}
	default:
		return fmt.Errorf("cannot delete container %s that is not stopped: %s", pos[0], st)
	}
	return c.Destroy()
}

// killAll SIGKILLs the container's processes and waits (bounded) until its
// init is gone; the init's parent reaps it.
func killAll(c *libcontainer.Container) error {
	_ = c.Signal(unix.SIGKILL)
	if pids, err := c.Processes(); err == nil {
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	deadline := time.Now().Add(deleteKillTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		if st, err := c.Status(); err != nil || st == libcontainer.Stopped {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("container init still running")
		}
		time.Sleep(delay)
	}
}
