package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// daemon is the berthd under test.
type daemon struct {
	cmd    *exec.Cmd
	socket string
	exited chan struct{}
	conn   *grpc.ClientConn
	rt     runtimeapi.RuntimeServiceClient
}

// daemonConfig is berth.toml for the run: everything of the daemon below
// dirs and cgroups of the run, and the registries critest pulls from
// served by the loopback registry.
func daemonConfig(authFile, confDir, cgroup, registryURL string, hosts []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log_level = \"debug\"\n\n[image]\nauth_file = %q\n\n", authFile)
	fmt.Fprintf(&b, "[network]\nconf_dir = %q\n\n", confDir)
	fmt.Fprintf(&b, "[runtime]\ndaemon_cgroup = %q\nshim_cgroup = %q\npod_cgroup = %q\n",
		cgroup+"/daemon", cgroup+"/shims", cgroup+"/pods")
	for _, h := range hosts {
		fmt.Fprintf(&b, "\n[registries.%q]\nendpoint = %q\n", h, registryURL)
	}
	return b.String()
}

// startDaemon starts berthd in a process group of its own (so that a
// Ctrl-C meant for the run reaches it only through the runner's cleanup)
// and waits until its socket answers.
func startDaemon(berthd string, args []string, logPath, socket string) (*daemon, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(berthd, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, socket: socket, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-d.exited:
			return nil, fmt.Errorf("berthd exited at start: %s", tail(readFile(logPath), 2048))
		default:
		}
		if err := d.connect(); err == nil {
			return d, nil
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("berthd did not serve on %s within 30s: %s", socket, tail(readFile(logPath), 2048))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) connect() error {
	if _, err := os.Stat(d.socket); err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	if _, err := rt.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		conn.Close()
		return err
	}
	d.conn, d.rt = conn, rt
	return nil
}

// removeAllPods stops and removes, through the CRI, whatever pods critest
// left behind (it removes its own unless a spec fails half way), and says
// how many there were.
func (d *daemon) removeAllPods() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods, err := d.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, p := range pods.Items {
		if _, err := d.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stop pod %s: %w", p.Id, err))
		}
		if _, err := d.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Errorf("remove pod %s: %w", p.Id, err))
		}
	}
	return len(pods.Items), errors.Join(errs...)
}

// stop sends berthd SIGTERM and, if it has not exited within 20 s,
// SIGKILL; both by its PID.
func (d *daemon) stop() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
