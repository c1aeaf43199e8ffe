package main

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// A pod whose containers share one PID namespace needs a process to keep
// that namespace alive between containers: berthd starts this binary as
// "berth-shim pidns-holder" in a new PID namespace, where it is PID 1. It
// does nothing but reap the orphans the kernel hands to PID 1 and ignore
// signals; it ends when berthd kills it at pod removal.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "pidns-holder" {
		holdPIDNamespace()
	}
}

func holdPIDNamespace() {
	signal.Ignore(unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGPIPE)
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err == unix.ECHILD {
			// No children: sleep until one arrives (SIGCHLD) without
			// spinning.
			unix.Pause()
		}
	}
}
