package api

// Streaming sessions (exec with a live terminal or pipes, attach) do not go
// through the RPC protocol: each session is one connection of its own to the
// shim's socket, so that the session's lifetime is the connection's.
//
//  1. The client dials the socket and writes SessionMagic, then a gob
//     SessionRequest.
//  2. The shim answers with one byte that carries the session's descriptors
//     as SCM_RIGHTS (none on error), then a gob SessionStart saying which
//     descriptors came, in the order of its fields.
//  3. The client may send gob SessionControl messages.
//  4. The shim sends a gob SessionExit when the exec'd process was reaped,
//     or closes the connection when the attached container exited.
//
// Closing the connection ends the session: an exec'd process is killed with
// its descendants, an attach client is forgotten. The data itself never
// passes through the shim: the client reads and writes the process's pipes
// or pty master directly.

// SessionMagic is the first byte of a session connection. No gob stream
// (the RPC protocol) starts with it: a gob message starts with its length,
// a byte below 0x80 or a negated byte count of 0xf8 and above.
const SessionMagic byte = 0x80

// Session kinds.
const (
	SessionExec   = "exec"
	SessionAttach = "attach"
)

// SessionRequest opens a session on a running container.
type SessionRequest struct {
	Kind string // SessionExec or SessionAttach
	ID   string // the container
	// Cmd and Env are the command of an exec session (Env is added to the
	// container's environment).
	Cmd []string
	Env []string
	// Which streams the client wants. For exec, a stream not wanted is
	// /dev/null to the process. For attach, Stdin is granted only when the
	// container was created with stdin and it is still open.
	Stdin, Stdout, Stderr bool
	// Tty gives an exec'd process a pseudo-terminal (its stdin, stdout and
	// stderr); the client receives the pty master. Attach follows the
	// container's own tty instead.
	Tty bool
	// Width and Height are the initial terminal size (0: the kernel's).
	Width, Height uint16
}

// SessionStart answers a SessionRequest. The descriptors received with it
// are, in this order, those whose flag is set.
type SessionStart struct {
	// Err is the error text ("<kind>: <message>", see Error); empty on
	// success.
	Err string
	// Pid of an exec'd process.
	Pid int
	// Stdin: the write end of the stdin pipe (or, for an attach to a tty
	// container, the pty master). Stdout and Stderr: read ends. Tty: the pty
	// master of an exec'd process, for its input, output and resizing.
	Stdin, Stdout, Stderr, Tty bool
	// StdinOnce: the container closes its stdin when the first attached
	// client's stdin ends (the client then sends CloseStdin).
	StdinOnce bool
}

// SessionControl is a message from the client during a session.
type SessionControl struct {
	// CloseStdin: the client's stdin ended; for an attach with StdinOnce
	// the shim closes the container's stdin.
	CloseStdin bool
}

// SessionExit reports the end of an exec'd process.
type SessionExit struct {
	// ExitCode as in ContainerState.ExitCode.
	ExitCode int32
	Message  string
}

// FdCount is how many descriptors a SessionStart announces.
func (s *SessionStart) FdCount() int {
	n := 0
	for _, b := range []bool{s.Stdin, s.Stdout, s.Stderr, s.Tty} {
		if b {
			n++
		}
	}
	return n
}
