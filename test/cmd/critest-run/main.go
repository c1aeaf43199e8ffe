// Command critest-run runs critest, the CRI conformance suite of
// sigs.k8s.io/cri-tools, against a berthd of its own and undoes everything
// the run made, also when the suite fails or the run is interrupted:
//
//   - a loopback registry (test/testregistry) serving critest's images under
//     the names critest pulls; berthd's endpoints for gcr.io,
//     registry.k8s.io and k8s.gcr.io point at it;
//   - a CNI network (test/testnet: a bridge, no masquerade, a FORWARD rule
//     that keeps pod traffic inside the pod subnet, portmap, loopback);
//   - berthd with its root, state dir, socket and cgroups below the run's
//     own directories and cgroup;
//   - critest with --ginkgo.skip naming only what cannot run here (skips.go).
//
// Afterwards it removes the pods critest left, stops berthd by its PID,
// kills whatever is left in the run's cgroup, unmounts and removes the
// run's directories, deletes the network and its iptables rules and stops
// the registry. The whole run happens in an IPC namespace of its own
// (ipcns.go). make test-critest builds the binaries and runs it:
//
//	critest-run --critest build/critest/critest --busybox build/critest/busybox \
//	    --webserver build/critest/webserver --nnp build/critest/nnp [--focus RE] [--out DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/test/mountinfo"
	"github.com/berth-runtime/berth/test/testnet"
	"github.com/berth-runtime/berth/test/testregistry"
)

type options struct {
	critest, berthd         string
	busybox, webServer, nnp string
	focus, out              string
	extraSkip               string
	ginkgoArgs              []string
}

func main() {
	var o options
	flag.StringVar(&o.critest, "critest", "build/critest/critest", "the critest `binary` (hack/build-critest.sh)")
	flag.StringVar(&o.berthd, "berthd", "bin/berthd", "the berthd `binary` under test; berth-shim and berth-runtime are expected beside it")
	flag.StringVar(&o.busybox, "busybox", "build/critest/busybox", "static busybox `binary` for the images (hack/build-busybox.sh)")
	flag.StringVar(&o.webServer, "webserver", "build/critest/webserver", "static test/cmd/critest-webserver `binary`")
	flag.StringVar(&o.nnp, "nnp", "build/critest/nnp", "static test/cmd/critest-nnp `binary`")
	flag.StringVar(&o.focus, "focus", "", "run only specs matching this `regexp` (--ginkgo.focus)")
	flag.StringVar(&o.extraSkip, "skip", "", "also skip specs matching this `regexp`, on top of the fixed list")
	flag.StringVar(&o.out, "out", "build/critest/run", "`directory` for critest's output and berthd's log, kept after the run")
	flag.Parse()
	o.ginkgoArgs = flag.Args()

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "critest-run: needs root")
		os.Exit(2)
	}
	if code, ran, err := inOwnIPCNamespace(); ran {
		if err != nil {
			fmt.Fprintln(os.Stderr, "critest-run:", err)
		}
		os.Exit(code)
	}
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "critest-run:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// run sets everything up, runs critest and tears everything down; it
// returns critest's exit code.
func run(o options) (code int, err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	for _, p := range []*string{&o.critest, &o.berthd, &o.busybox, &o.webServer, &o.nnp, &o.out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return 1, err
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return 1, err
	}
	tools, err := testregistry.LoadCritestTools(o.busybox, o.webServer, o.nnp)
	if err != nil {
		return 1, err
	}

	// Undo steps run last-in first-out, each one even when an earlier one
	// failed.
	var undo []func() error
	defer func() {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			if e := undo[i](); e != nil {
				errs = append(errs, e)
			}
		}
		if len(errs) > 0 {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", errors.Join(errs...)))
		}
	}()

	reg, err := testregistry.Start(testregistry.Options{Images: []string{}})
	if err != nil {
		return 1, err
	}
	undo = append(undo, reg.Close)
	refs, err := reg.PushCritest(tools)
	if err != nil {
		return 1, err
	}
	fmt.Printf("registry %s serves %d critest images\n", reg.URL(), len(refs))

	suffix := testnet.RandHex(3)
	dir, err := os.MkdirTemp("", "berth-critest-")
	if err != nil {
		return 1, err
	}
	// The state dir is short: a monitor's socket path must fit in the 108
	// bytes of a unix socket address.
	state := "/run/berth-critest-" + suffix
	cgroup := "/berth-critest-" + suffix
	undo = append(undo, func() error {
		var errs []error
		for _, m := range mountinfo.Under(mountinfo.Read(), dir, state) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
		errs = append(errs, os.RemoveAll(state), os.RemoveAll(dir))
		return errors.Join(errs...)
	})

	env, err := testnet.Setup(testnet.Options{Dir: filepath.Join(dir, "net"), NamePrefix: "berth-critest-", BridgePrefix: "critestbr"})
	if err != nil {
		return 1, err
	}
	undo = append(undo, func() error {
		out, _ := testnet.Run("iptables", "-t", "nat", "-S")
		for _, id := range portmapIDs(out, env.Name) {
			env.AddID(id)
		}
		return env.Close()
	})
	undo = append(undo, func() error {
		// Monitors and containers outlive berthd by design; all of them
		// are in the run's cgroup. Killed before anything is unmounted.
		return cgroups.Remove(cgroup, true)
	})
	if _, err := env.WriteConfFile("10-"+env.Name+".conflist", testnet.PortmapConf, testnet.LoopbackConf); err != nil {
		return 1, err
	}

	cfg := filepath.Join(dir, "berth.toml")
	if err := os.WriteFile(cfg, []byte(daemonConfig(filepath.Join(dir, "auth.json"), env.ConfDir, cgroup,
		reg.URL(), testregistry.CritestHosts)), 0o644); err != nil {
		return 1, err
	}
	socket := filepath.Join(state, "berth.sock")
	berthdLog := filepath.Join(o.out, "berthd.log")
	d, err := startDaemon(o.berthd, []string{"--config", cfg, "--root", filepath.Join(dir, "root"),
		"--state-dir", state, "--socket", socket}, berthdLog, socket)
	if err != nil {
		return 1, err
	}
	undo = append(undo, func() error {
		n, err := d.removeAllPods()
		if n > 0 {
			fmt.Printf("removed %d pods critest left behind\n", n)
		}
		d.stop()
		return err
	})
	fmt.Printf("berthd (pid %d) on %s, log %s\n", d.cmd.Process.Pid, socket, berthdLog)

	skip := skipRegexp()
	if o.extraSkip != "" {
		skip += "|(" + o.extraSkip + ")"
	}
	args := []string{
		"--runtime-endpoint", "unix://" + socket,
		"--image-endpoint", "unix://" + socket,
		"--ginkgo.no-color",
		"--ginkgo.skip", skip,
		"--ginkgo.junit-report", filepath.Join(o.out, "junit.xml"),
	}
	if o.focus != "" {
		args = append(args, "--ginkgo.focus", o.focus)
	}
	args = append(args, o.ginkgoArgs...)
	for _, s := range skips {
		fmt.Printf("skipping %q: %s\n", s.pattern, s.reason)
	}

	outPath := filepath.Join(o.out, "critest.log")
	outFile, err := os.Create(outPath)
	if err != nil {
		return 1, err
	}
	defer outFile.Close()
	cmd := exec.CommandContext(ctx, o.critest, args...)
	// critest makes its temporary files (pod log dirs, seccomp profiles,
	// host paths it mounts) under TMPDIR: in the run's directory, they go
	// with it even when a spec fails before removing them.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	cmd.Stdout = io.MultiWriter(os.Stdout, outFile)
	cmd.Stderr = cmd.Stdout
	runErr := cmd.Run()

	outFile.Seek(0, io.SeekStart)
	sum, _ := parseSummary(outFile)
	fmt.Printf("\ncritest: %s\n", sum)
	for _, f := range sum.Failures {
		fmt.Println("  " + f)
	}
	fmt.Printf("output: %s\nberthd log: %s\n", outPath, berthdLog)

	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return 130, errors.New("interrupted")
	case errors.As(runErr, &ee):
		return ee.ExitCode(), nil
	case runErr != nil:
		return 1, runErr
	case !sum.Found:
		return 1, errors.New("critest printed no summary")
	}
	return 0, nil
}
