package main

import (
	"fmt"
	"net"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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

// setStdio gives p this process's own stdio, which the caller set up for
// the container (runc's detached mode), or, with a console socket, a pty
// whose master libcontainer sends there. closeConsole closes this
// process's ends of the socket once the process was started.
func setStdio(p *libcontainer.Process, consoleSocket string) (closeConsole func(), _ error) {
	if consoleSocket == "" {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
		return func() {}, nil
	}
	conn, err := net.Dial("unix", consoleSocket)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	p.ConsoleSocket = f
	return func() { f.Close(); conn.Close() }, nil
}
