package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"

	"golang.org/x/sys/unix"
)

// runtimeArgs builds the command lines of an OCI runtime binary with runc's
// command line (runc, crun) for one container, as containerd's runc shim
// and CRI-O drive them. Pure: runtime_external.go runs them.
type runtimeArgs struct {
	root    string // the runtime's state directory (--root)
	log     string // the runtime's own log, JSON lines (--log)
	systemd bool   // the cgroupsPath is "slice:prefix:name" (--systemd-cgroup)
}

// global are the options every command gets before its name.
func (a runtimeArgs) global() []string {
	g := []string{"--root", a.root, "--log", a.log, "--log-format", "json"}
	if a.systemd {
		g = append(g, "--systemd-cgroup")
	}
	return g
}

func (a runtimeArgs) cmd(args ...string) []string { return append(a.global(), args...) }

// create makes the container and leaves its init waiting for start; the
// init's PID goes to pidFile, and with a console socket the pty master is
// sent there.
func (a runtimeArgs) create(id, bundle, pidFile, consoleSocket string) []string {
	args := []string{"create", "--bundle", bundle, "--pid-file", pidFile}
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	return a.cmd(append(args, id)...)
}

func (a runtimeArgs) start(id string) []string { return a.cmd("start", id) }

// kill signals init, or with all every process of the container.
func (a runtimeArgs) kill(id string, sig unix.Signal, all bool) []string {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	return a.cmd(append(args, id, strconv.Itoa(int(sig)))...)
}

// delete removes the container's cgroups and state; with force also a
// container that still runs.
func (a runtimeArgs) delete(id string, force bool) []string {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	return a.cmd(append(args, id)...)
}

// exec starts the process described in processFile (an OCI process, JSON)
// in the container and returns at once (--detach): the process is left to
// the shim, the runtime's subreaper.
func (a runtimeArgs) exec(id, processFile, pidFile, consoleSocket string) []string {
	args := []string{"exec", "--process", processFile, "--pid-file", pidFile, "--detach"}
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	return a.cmd(append(args, id)...)
}

// update applies the OCI linux.resources in resourcesFile (JSON) to the
// container's cgroups.
func (a runtimeArgs) update(id, resourcesFile string) []string {
	return a.cmd("update", "--resources", resourcesFile, id)
}

// lastLogError returns the message of the last error in a runtime's JSON
// log (runc and crun write {"level":"error","msg":...} lines), else of its
// last line, else "".
func lastLogError(log []byte) string {
	var last, lastErr string
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Msg == "" {
			continue
		}
		last = e.Msg
		if e.Level == "error" || e.Level == "fatal" {
			lastErr = e.Msg
		}
	}
	if lastErr != "" {
		return lastErr
	}
	return last
}
