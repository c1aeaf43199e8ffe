package main

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// ipcNSEnv marks the copy of the runner that already runs in an IPC
// namespace of its own.
const ipcNSEnv = "BERTH_CRITEST_IPCNS"

// inOwnIPCNamespace runs the runner again in a new IPC namespace and
// returns its exit code, or returns ok=false when this already is that
// copy. The HostIpc specs make a System V shared memory segment with ipcmk
// on the "host" and never remove it; in a namespace of the run's own (which
// berthd, its monitors and so the host-IPC containers share) the segment
// goes away with the namespace instead of staying on the node.
func inOwnIPCNamespace() (code int, ok bool, err error) {
	if os.Getenv(ipcNSEnv) == "1" {
		return 0, false, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return 1, true, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), ipcNSEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}
	// The copy cleans up on SIGINT and SIGTERM; this process only passes
	// them on and waits for it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 1, true, err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), true, nil
	}
	if err != nil {
		return 1, true, err
	}
	return 0, true, nil
}
