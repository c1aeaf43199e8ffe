package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// berth-pidns-holder, as PID 1 of a new PID namespace: it outlives the
// signals of a broad kill, reaps the orphans of its namespace, and ends on
// SIGKILL.
func TestPIDNamespaceHolder(t *testing.T) {
	bin := filepath.Join(filepath.Dir(berthdPath(t)), "berth-pidns-holder")
	if out, err := exec.Command(bin).CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
		t.Errorf("without a pod ID: %v, %q; want a usage error", err, out)
	}

	cmd := exec.Command(bin, "pod-under-test")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	waited := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(waited) }()
	defer func() {
		syscall.Kill(pid, syscall.SIGKILL)
		<-waited
	}()

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE} {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	// An orphan in the namespace: the shell exits at once, its sleep is
	// handed to PID 1, which must reap it when it ends.
	out, err := exec.Command("nsenter", "--target", strconv.Itoa(pid), "--pid", "--",
		"/bin/sh", "-c", "sleep 1 >/dev/null 2>&1 & echo $!").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	children := func() string {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
		return strings.TrimSpace(string(b))
	}
	if !waitUntil(2*time.Second, func() bool { return children() != "" }) {
		t.Fatal("the orphan never became the holder's child")
	}
	orphan, _ := strconv.Atoi(strings.Fields(children())[0])
	if !waitUntil(5*time.Second, func() bool { return children() == "" && !exists(orphan) }) {
		t.Fatalf("orphan %d not reaped (children %q)", orphan, children())
	}
	select {
	case err := <-exited:
		t.Fatalf("the holder ended on a signal it must ignore: %v", err)
	default:
	}

	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case err := <-exited:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("holder ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the holder survived SIGKILL")
	}
}

// exists says whether a process with this PID is there, zombie or not.
func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}
