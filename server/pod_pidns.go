package server

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/server/store"
)

// startPIDHolder starts the process that holds a pod's shared PID
// namespace (cmd/berth-pidns-holder), in the monitor's cgroup so that it
// is accounted to the pod's overhead, not to berthd.
func (s *Server) startPIDHolder(pod *store.Pod) (int, error) {
	cmd := exec.Command(s.pidHolderPath, pod.ID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("pod PID namespace: %w", err)
	}
	pid := cmd.Process.Pid
	// Reap it when it ends, so no zombie stays behind berthd.
	go cmd.Wait()
	if err := cgroups.Place(s.cfg.Runtime.ShimCgroup+"/"+pod.ID, pid); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return 0, fmt.Errorf("pod PID namespace: %w", err)
	}
	return pid, nil
}

// pidNSPath is where containers of the pod join its PID namespace.
func pidNSPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/ns/pid" }

// stopPIDHolder kills the holder if it still is ours (its command line
// names the pod), so a recycled PID is never signalled.
func stopPIDHolder(pod *store.Pod) {
	if pod.PIDHolder <= 0 {
		return
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pod.PIDHolder) + "/cmdline")
	if err == nil && containsArg(cmdline, pod.ID) {
		syscall.Kill(pod.PIDHolder, syscall.SIGKILL)
	}
}

func containsArg(cmdline []byte, arg string) bool {
	start := 0
	for i, b := range cmdline {
		if b == 0 {
			if string(cmdline[start:i]) == arg {
				return true
			}
			start = i + 1
		}
	}
	return false
}
