// Command berthd is the berth container runtime daemon: it serves the
// Kubernetes Container Runtime Interface on a unix socket.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/berth-runtime/berth/pkg/admin"
	"github.com/berth-runtime/berth/pkg/config"
	"github.com/berth-runtime/berth/pkg/daemon"
	"github.com/berth-runtime/berth/pkg/logging"
	"github.com/berth-runtime/berth/pkg/version"
)

const usage = `Usage:
  berthd [flags]                 serve CRI (see flags below)
  berthd config                  print the default config as commented TOML
  berthd image import [--socket PATH] FILE
                                 import an image archive into the running berthd
  berthd --version               print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "config":
			return printConfig(stdout, stderr)
		case "image":
			return imageCommand(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintf(stdout, "berthd %s (CRI %s)\n", version.Version, version.CRIVersion)
			return 0
		}
	}
	return serve(args, stdout, stderr)
}

// serveFlags are the flags that override config keys.
type serveFlags struct {
	config, root, stateDir, socket, logLevel, logFormat string
	showVersion                                         bool
	set                                                 map[string]bool
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{set: map[string]bool{}}
	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage, "\nFlags:\n"); fs.PrintDefaults() }
	fs.StringVar(&f.config, "config", config.DefaultPath, "config file; a missing default file means defaults")
	fs.StringVar(&f.root, "root", "", "persistent data directory (default from config: /var/lib/berth)")
	fs.StringVar(&f.stateDir, "state-dir", "", "runtime state directory (default from config: /run/berth)")
	fs.StringVar(&f.socket, "socket", "", "CRI unix socket (default from config: /run/berth/berth.sock)")
	fs.StringVar(&f.logLevel, "log-level", "", "trace, debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// load reads the config file and applies the flags over it.
func (f *serveFlags) load() (config.Config, error) {
	cfg, err := config.Load(f.config, f.set["config"])
	if err != nil {
		return cfg, err
	}
	overrides := []struct {
		flag string
		val  string
		dst  *string
	}{
		{"root", f.root, &cfg.Root},
		{"state-dir", f.stateDir, &cfg.StateDir},
		{"socket", f.socket, &cfg.Socket},
		{"log-level", f.logLevel, &cfg.LogLevel},
		{"log-format", f.logFormat, &cfg.LogFormat},
	}
	for _, o := range overrides {
		if f.set[o.flag] {
			*o.dst = o.val
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w (after flags)", err)
	}
	return cfg, nil
}

func serve(args []string, stdout, stderr io.Writer) int {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "berthd:", err)
		return 2
	}
	if f.showVersion {
		fmt.Fprintf(stdout, "berthd %s (CRI %s)\n", version.Version, version.CRIVersion)
		return 0
	}
	cfg, err := f.load()
	if err != nil {
		fmt.Fprintln(stderr, "berthd:", err)
		return 1
	}
	if err := logging.Setup(cfg.LogLevel, cfg.LogFormat); err != nil {
		fmt.Fprintln(stderr, "berthd:", err)
		return 1
	}
	if err := daemon.Run(cfg, daemon.Options{ConfigPath: f.config, Reload: f.load}); err != nil {
		fmt.Fprintln(stderr, "berthd:", err)
		return 1
	}
	return 0
}

func printConfig(stdout, stderr io.Writer) int {
	data, err := config.Marshal(config.Default())
	if err != nil {
		fmt.Fprintln(stderr, "berthd:", err)
		return 1
	}
	stdout.Write(data)
	return 0
}

func imageCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("berthd image import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", config.Default().Socket, "berthd's CRI socket")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "berthd image import: give exactly one archive file")
		return 2
	}
	path, err := absPath(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "berthd image import:", err)
		return 1
	}
	conn, err := grpc.NewClient("unix://"+*socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(stderr, "berthd image import:", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	imgs, err := admin.Import(ctx, conn, path)
	if err != nil {
		fmt.Fprintln(stderr, "berthd image import:", err)
		return 1
	}
	for _, img := range imgs {
		fmt.Fprintf(stdout, "%s %v\n", img.ID, img.RepoTags)
	}
	return 0
}

func absPath(p string) (string, error) {
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	if len(p) > 0 && p[0] == '/' {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return wd + "/" + p, nil
}
