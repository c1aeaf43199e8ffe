package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// create makes the container from the bundle and leaves its init waiting
// for start: "create --bundle B --pid-file P [--console-socket S] ID". The
// init gets this process's stdin, stdout and stderr, or with the spec's
// terminal a pty whose master goes to the console socket.
func create(g globalOpts, args []string) (retErr error) {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	bundle := fs.String("bundle", "", "the bundle directory")
	pidFile := fs.String("pid-file", "", "file the init's PID is written to")
	consoleSocket := fs.String("console-socket", "", "unix socket the pty master is sent to")
	pos, err := parseCmd(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id := pos[0]
	if *bundle == "" {
		return errors.New("create: --bundle is required")
	}
	// Relative paths of the spec (root, bind sources) are the bundle's, as
	// for runc.
	if err := os.Chdir(*bundle); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	spec, err := loadSpec("config.json")
	if err != nil {
		return err
	}
	if spec.Process.Terminal != (*consoleSocket != "") {
		return fmt.Errorf("process.terminal is %v but --console-socket is %q", spec.Process.Terminal, *consoleSocket)
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       id,
		UseSystemdCgroup: g.systemd,
		Spec:             spec,
	})
	if err != nil {
		return fmt.Errorf("config.json: %w", err)
	}
	c, err := libcontainer.Create(g.root, id, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			if err := c.Destroy(); err != nil {
				fmt.Fprintf(os.Stderr, "destroy after failed create: %v\n", err)
			}
		}
	}()

	p := newProcess(spec.Process)
	p.Init = true
	closeConsole, err := setStdio(p, *consoleSocket)
	if err != nil {
		return err
	}
	defer closeConsole()
	if err := c.Start(p); err != nil {
		return fmt.Errorf("start init: %w", err)
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

func loadSpec(file string) (*specs.Spec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	if spec.Process == nil {
		return nil, errors.New("config.json has no process")
	}
	return &spec, nil
}

// writePidFile writes p's PID atomically (a temporary file renamed), so
// that a reader never sees a partial number.
func writePidFile(path string, p *libcontainer.Process) error {
	pid, err := p.Pid()
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
