package main

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The shim drives its containers through an OCI runtime binary with runc's
// command line (runtime_external.go): berth-runtime, libcontainer in a
// process of its own, by default, or the binary the --runtime flag names.
// The shim is, as a child subreaper, the adoptive parent of every
// container's init and exec'd process: it reaps them itself and so learns
// their exit status, and it owns their stdio.

// ociRuntime creates containers.
type ociRuntime interface {
	// create makes container id from spec (bundle is its directory) with
	// io as its init's stdio; the init then waits for start. With io.tty
	// the pty master the runtime made is returned instead. On error nothing
	// of the container is left.
	create(id, bundle string, spec *ctrSpec, io procIO) (ctrHandle, *os.File, error)
	// close removes what the runtime keeps for the pod, once no container
	// is left.
	close()
}

// procIO are a new process's standard streams: the process's ends, which
// the caller closes once the call returned; nil means none (/dev/null).
// With tty the process gets a pty instead, whose size the process's
// consoleSize gives.
type procIO struct {
	stdin, stdout, stderr *os.File
	tty                   bool
}

// ctrHandle drives one created container.
type ctrHandle interface {
	// pid is the container's init.
	pid() int
	// start lets init exec the user process.
	start() error
	// wait reaps init and returns its exit (see exitStatus); err is set
	// when the status could not be learnt.
	wait() (code int32, msg string, err error)
	// signal sends sig to init, or with all to every process of the
	// container. A container whose init is gone answers api.ErrNotRunning.
	signal(sig unix.Signal, all bool) error
	// processes lists the container's processes (its cgroup's).
	processes() ([]int, error)
	// cgroupPaths are the container's cgroup directories by controller
	// ("" for the unified hierarchy), for the OOM count and memory usage.
	cgroupPaths() map[string]string
	// exec starts process (an OCI process, JSON) in the running
	// container; with io.tty the pty master is returned.
	exec(process []byte, io procIO) (execProc, *os.File, error)
	// update gives the container the cgroup resources r.
	update(r *specs.LinuxResources) error
	// destroy removes the exited container: its cgroups and the runtime's
	// state.
	destroy() error
}

// execProc is a process exec'd into a container.
type execProc interface {
	pid() int
	signal(sig unix.Signal) error
	wait() (code int32, msg string, err error)
}
