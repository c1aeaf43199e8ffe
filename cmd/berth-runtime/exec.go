package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execProcess starts a process in the running container and returns once
// it runs, its PID written: "exec --process F --pid-file P --detach
// [--console-socket S] ID". The process gets this process's stdio, or a
// pty whose master goes to the console socket; it is left to whoever
// reaps this process's orphans.
func execProcess(g globalOpts, args []string) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	procFile := fs.String("process", "", "the process, an OCI process in JSON")
	pidFile := fs.String("pid-file", "", "file the process's PID is written to")
	consoleSocket := fs.String("console-socket", "", "unix socket the pty master is sent to")
	detach := fs.Bool("detach", false, "return once the process runs")
	fs.BoolVar(detach, "d", false, "same as --detach")
	pos, err := parseCmd(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if !*detach {
		return errors.New("exec: only --detach is supported")
	}
	if *procFile == "" {
		return errors.New("exec: --process is required")
	}
	b, err := os.ReadFile(*procFile)
	if err != nil {
		return err
	}
	var sp specs.Process
	if err := json.Unmarshal(b, &sp); err != nil {
		return fmt.Errorf("process: %w", err)
	}
	if sp.Terminal != (*consoleSocket != "") {
		return fmt.Errorf("process.terminal is %v but --console-socket is %q", sp.Terminal, *consoleSocket)
	}
	c, err := load(g, pos[0])
	if err != nil {
		return err
	}
	p := newProcess(&sp)
	p.Init = false
	closeConsole, err := setStdio(p, *consoleSocket)
	if err != nil {
		return err
	}
	err = c.Run(p)
	closeConsole()
	if err != nil {
		return err
	}
	if *pidFile != "" {
		if err := writePidFile(*pidFile, p); err != nil {
			p.Signal(unix.SIGKILL)
			p.Wait()
			return err
		}
	}
	return nil
}
