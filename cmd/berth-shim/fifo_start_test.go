package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The start reads the init's byte and waits for the end of file (the
// exec), then removes the FIFO, whichever of the two comes first.
func TestStartByFifo(t *testing.T) {
	for _, writerFirst := range []bool{false, true} {
		dir := t.TempDir()
		fifo := filepath.Join(dir, execFifo)
		if err := unix.Mkfifo(fifo, 0o622); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			// As the init: block until a reader is there, write, "exec".
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.Write([]byte{0})
				time.Sleep(20 * time.Millisecond)
				f.Close()
			}
			done <- err
		}()
		if writerFirst {
			time.Sleep(20 * time.Millisecond)
		}
		if err := startByFifo(dir, os.Getpid()); err != nil {
			t.Fatalf("writer first %v: %v", writerFirst, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(fifo); !os.IsNotExist(err) {
			t.Errorf("the FIFO is left: %v", err)
		}
		// Started already: there is no FIFO any more.
		if err := startByFifo(dir, os.Getpid()); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("second start: %v", err)
		}
	}
}

// An init that died before it opened the FIFO fails the start instead of
// hanging it.
func TestStartByFifoDeadInit(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, execFifo), 0o622); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	err := startByFifo(dir, cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), "dead") {
		t.Errorf("start with a dead init: %v", err)
	}
}
