// Command berth-runtime is berth's built-in OCI runtime: a small command
// line on runc's libcontainer, with the subset of runc's command line that
// berth-shim drives (cmd/berth-shim/runtime_args.go) and runc's meaning
// for it. Each command is a short-lived process, so that the pod monitor,
// which lives as long as its pod, never holds libcontainer's memory.
//
// The same binary is libcontainer's "init": every container process starts
// as "berth-runtime init", which joins the namespaces (nsenter, C code that
// runs before the Go runtime) and sets the container up.
//
// Errors go to the --log file as JSON lines ({"level":"error","msg":...}),
// as runc writes them, and the exit status is non-zero.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"

	// Runs before the Go runtime in "init" to join the container's
	// namespaces.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	// Registers the device cgroup rule writer; without it libcontainer
	// refuses every container ("cgroup manager is not configured to set
	// device rules").
	_ "github.com/opencontainers/cgroups/devices"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// libcontainer re-executes this binary as a container's init; this
		// does not return.
		libcontainer.Init()
	}
}

// globalOpts are the options before the command's name.
type globalOpts struct {
	root    string
	systemd bool
}

func main() {
	g, cmd, args, err := parseGlobal(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		os.Exit(2)
	}
	if err := run(g, cmd, args); err != nil {
		logrus.Error(err.Error())
		os.Exit(1)
	}
}

// parseGlobal reads the global options and sets up the log; it returns
// the command and its arguments.
func parseGlobal(argv []string) (globalOpts, string, []string, error) {
	var g globalOpts
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", "/run/berth-runtime", "state directory")
	logPath := fs.String("log", "", "file the runtime's messages are appended to (default: stderr)")
	logFormat := fs.String("log-format", "text", "text or json")
	fs.BoolVar(&g.systemd, "systemd-cgroup", false, "cgroupsPath is slice:prefix:name")
	if err := fs.Parse(argv); err != nil {
		return g, "", nil, err
	}
	if fs.NArg() == 0 {
		return g, "", nil, errors.New("no command")
	}
	switch *logFormat {
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{})
	case "text":
	default:
		return g, "", nil, fmt.Errorf("unknown --log-format %q", *logFormat)
	}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return g, "", nil, err
		}
		logrus.SetOutput(f)
	}
	return g, fs.Arg(0), fs.Args()[1:], nil
}

func run(g globalOpts, cmd string, args []string) error {
	switch cmd {
	case "create":
		return create(g, args)
	case "start":
		return start(g, args)
	case "kill":
		return kill(g, args)
	case "delete":
		return remove(g, args)
	case "exec":
		return execProcess(g, args)
	case "update":
		return update(g, args)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// parseCmd parses a command's options into fs and checks it got n
// positional arguments (the container's ID first).
func parseCmd(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if n := fs.NArg(); n < min || n > max {
		return nil, fmt.Errorf("%s: got %d arguments, want %d to %d", fs.Name(), n, min, max)
	}
	if fs.Arg(0) == "" {
		return nil, fmt.Errorf("%s: container id cannot be empty", fs.Name())
	}
	return fs.Args(), nil
}
