// Command bench measures berthd against Debian's containerd through CRI,
// both fed by the in-process test registry, and writes each result as a
// Markdown section of docs/benchmarks.md: "pull" (PullImage of a 51 MB
// image into an empty store) and "pods" (pod and container start, 50 pods
// at once, memory per pod).
//
//	go run ./test/bench --berthd bin/berthd --out docs/benchmarks.md
//	go run ./test/bench --only pods
//
// It needs root (both daemons mount, chown and make network namespaces)
// and the containerd package; `make bench` installs it. Everything it
// starts or creates lives under one temporary directory, a test bridge and
// cgroups under /berth-bench, and is removed on exit, also on failure and
// Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/test/testregistry"
)

type options struct {
	berthd     string
	containerd string
	out        string
	only       string
	runs       int
	image      string
	logDir     string
	timeout    time.Duration
	pods       podOptions
}

func main() {
	var o options
	flag.StringVar(&o.berthd, "berthd", "bin/berthd", "the berthd binary to measure")
	flag.StringVar(&o.containerd, "containerd", "/usr/bin/containerd", "the containerd binary to compare against")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown file whose pull section is (re)written")
	flag.IntVar(&o.runs, "runs", 7, "measured pulls per runtime (after one warm-up pull each)")
	flag.StringVar(&o.image, "image", "big", "test registry catalog image to pull")
	flag.StringVar(&o.logDir, "log-dir", "", "copy both daemons' logs here before cleaning up (default: not kept)")
	flag.DurationVar(&o.timeout, "pull-timeout", 5*time.Minute, "limit for one pull, content removal included")
	flag.StringVar(&o.only, "only", "", "run only this section: pull or pods (default: both, pull first)")
	flag.IntVar(&o.pods.lifecycles, "pod-runs", 30, "sequential pod lifecycles per runtime")
	flag.IntVar(&o.pods.burst, "pods", 50, "pods started at once per runtime")
	flag.IntVar(&o.pods.rounds, "pod-rounds", 3, "rounds of starting --pods pods at once, per runtime (the median is reported)")
	flag.StringVar(&o.pods.seccomp, "pod-seccomp", "unconfined", "seccomp of the pods' containers: unconfined (kubelet's default) or runtime-default")
	flag.DurationVar(&o.pods.timeout, "pod-timeout", 3*time.Minute, "limit for one pod phase (one lifecycle, or all pods at once)")
	flag.Parse()
	if o.runs < 1 || o.pods.lifecycles < 1 || o.pods.burst < 1 || o.pods.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: --runs, --pod-runs, --pods and --pod-rounds must be at least 1")
		os.Exit(2)
	}
	if o.only != "" && o.only != "pull" && o.only != "pods" {
		fmt.Fprintf(os.Stderr, "bench: --only %q: want pull or pods\n", o.only)
		os.Exit(2)
	}
	if o.pods.seccomp != "unconfined" && o.pods.seccomp != "runtime-default" {
		fmt.Fprintf(os.Stderr, "bench: --pod-seccomp %q: want unconfined or runtime-default\n", o.pods.seccomp)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: must run as root (both runtimes mount and chown image content)")
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first SIGINT/SIGTERM cancels the work; later ones are swallowed
	// so that cleanup (stopping daemons, unmounting) is never cut short.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		n := 0
		for s := range sigs {
			n++
			if n == 1 {
				fmt.Fprintf(os.Stderr, "bench: %v: stopping and cleaning up\n", s)
				cancel()
			} else {
				fmt.Fprintln(os.Stderr, "bench: still cleaning up; processes and mounts would be left behind if interrupted harder")
			}
		}
	}()

	err := run(ctx, o)
	if err != nil {
		// Only a signal cancels ctx; whatever failed afterwards failed
		// because of it.
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted:", err)
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run does the whole benchmark; every resource is registered with the
// cleanup stack as soon as it exists, and the stack runs whatever happens.
func run(ctx context.Context, o options) (err error) {
	berthdBin, err := filepath.Abs(o.berthd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(berthdBin); err != nil {
		return fmt.Errorf("berthd binary: %w (run `make build`)", err)
	}
	if _, err := os.Stat(o.containerd); err != nil {
		return fmt.Errorf("containerd binary: %w (apt-get install -y containerd)", err)
	}
	doPull, doPods := o.only != "pods", o.only != "pull"
	if doPods {
		if err := checkPodTools(berthdBin); err != nil {
			return err
		}
	}

	var c cleanups
	defer func() {
		if cerr := c.run(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()

	top, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	// Registered first so it runs last: by then the daemons are stopped and
	// nothing under top is mounted any more.
	c.add("remove "+top, func() error {
		if err := unmountUnder(top); err != nil {
			return err
		}
		return os.RemoveAll(top)
	})

	var images []string
	if doPull {
		images = append(images, o.image)
	}
	if doPods {
		images = append(images, podImage, sandboxImage)
	}
	fmt.Fprintln(os.Stderr, "bench: building the test images and starting the registry")
	reg, err := startRegistry(images)
	if err != nil {
		return err
	}
	c.add("close registry", reg.Close)

	if doPull {
		// Each section has its own daemons, stopped when it ends, so that
		// one section's leftovers (memory, caches) do not weigh on the next.
		if err := runPull(ctx, o, berthdBin, filepath.Join(top, "pull"), reg); err != nil {
			return fmt.Errorf("pull benchmark: %w", err)
		}
	}
	if doPods {
		if err := runPods(ctx, o, berthdBin, filepath.Join(top, "pods"), reg); err != nil {
			return fmt.Errorf("pod benchmark: %w", err)
		}
	}
	return nil
}

// runPull measures image pulls and writes the pull section.
func runPull(ctx context.Context, o options, berthdBin, dir string, reg *testregistry.Registry) (err error) {
	var c cleanups
	defer func() {
		if cerr := c.run(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	img := reg.Image(o.image)
	bd, err := startBerthd(ctx, berthdBin, filepath.Join(dir, "berthd"), berthdSettings{registryURL: reg.URL()})
	if bd != nil {
		c.add("stop berthd", func() error { return bd.finish(logDirFor(o.logDir, "pull")) })
	}
	if err != nil {
		return err
	}
	cd, err := startContainerd(ctx, o.containerd, filepath.Join(dir, "containerd"), containerdSettings{registryURL: reg.URL()})
	if cd != nil {
		c.add("stop containerd", func() error { return cd.finish(logDirFor(o.logDir, "pull")) })
	}
	if err != nil {
		return err
	}

	mach := machineInfo()
	res, err := measure(ctx, measureConfig{
		runtimes: []*runtimeUnderTest{bd, cd},
		reg:      reg,
		image:    img,
		runs:     o.runs,
		timeout:  o.timeout,
	})
	if err != nil {
		return err
	}
	// containerd is idle now, so its log holds every request it made.
	if err := cd.checkContactedOnly(reg.Addr()); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}

	rep := report{
		Machine:  mach,
		Date:     time.Now().UTC(),
		Versions: map[string]string{bd.name: bd.version, cd.name: cd.version},
		Image:    img,
		Runs:     o.runs,
		Results:  res,
		Notes:    []string{bd.settings, cd.settings},
	}
	section := rep.markdown()
	fmt.Println(section)
	if err := writeSection(o.out, "pull", section); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote the pull section of %s\n", o.out)
	return nil
}
