// Package api is the protocol between berthd and berth-shim: the request
// and reply types, the error kinds, and the on-disk container records. It
// imports nothing heavy, so that the shim binary, which links it, stays
// small; berthd uses it through package oci/shim, which re-exports it.
package api

import (
	"errors"
	"time"
)

// File and RPC names shared by berthd and the shim.
const (
	// SocketName is the control socket inside the shim's directory.
	SocketName = "shim.sock"
	// ContainersDir holds one directory per container with its state.json.
	ContainersDir = "containers"
	// StateFile is the name of a container's record inside its directory.
	StateFile = "state.json"
	// LibcontainerDir is libcontainer's state root inside the shim's
	// directory; libcontainer.Load(<dir>/libcontainer, id) reads a
	// container's cgroup paths and stats without the shim.
	LibcontainerDir = "libcontainer"
	// RuntimeRootDir is, for a pod run by an external OCI runtime binary,
	// that runtime's default state root (its --root) inside the shim's
	// directory.
	RuntimeRootDir = "runtime"
	// ServiceName prefixes every RPC method ("Shim.Create", ...).
	ServiceName = "Shim"
	// DefaultMaxLogLineSize is the longest CRI log record the shim writes
	// when the create request does not say (containerd's default).
	DefaultMaxLogLineSize = 16 << 10
	// DefaultExecOutputCap is how much output of each stream ExecSync keeps
	// when the request does not say; MaxExecOutputCap bounds any request,
	// since the shim holds the output in memory.
	DefaultExecOutputCap = 16 << 20
	MaxExecOutputCap     = 64 << 20
)

// RPC method names.
const (
	MethodInfo      = ServiceName + ".Info"
	MethodCreate    = ServiceName + ".Create"
	MethodStart     = ServiceName + ".Start"
	MethodSignal    = ServiceName + ".Signal"
	MethodState     = ServiceName + ".State"
	MethodList      = ServiceName + ".List"
	MethodWait      = ServiceName + ".Wait"
	MethodDelete    = ServiceName + ".Delete"
	MethodExecSync  = ServiceName + ".ExecSync"
	MethodReopenLog = ServiceName + ".ReopenLog"
	MethodShutdown  = ServiceName + ".Shutdown"
)

// Status is a container's lifecycle state, as CRI names it.
type Status string

const (
	// StatusCreated: init runs and waits for Start; no user code ran yet.
	StatusCreated Status = "created"
	// StatusRunning: the user process was exec'd.
	StatusRunning Status = "running"
	// StatusStopped: the container's init exited and the exit was recorded.
	StatusStopped Status = "stopped"
	// StatusUnknown: the state cannot be told (berthd uses it for records
	// whose shim is gone).
	StatusUnknown Status = "unknown"
)

// ContainerState is what the shim knows about one container. The same
// structure is written as JSON to <dir>/containers/<id>/state.json at
// create, start and exit, before any answer reports that state.
type ContainerState struct {
	ID         string    `json:"id"`
	Status     Status    `json:"status"`
	Pid        int       `json:"pid,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// ExitCode is the exit status, or 128+signal for a container killed by
	// a signal (143 for SIGTERM, 137 for SIGKILL). 255 when the exit status
	// could not be learned (Message says why).
	ExitCode int32 `json:"exit_code"`
	// OOMKilled: the kernel's OOM killer killed a process of the container's
	// memory cgroup (the cgroup's oom_kill counter was non-zero at exit).
	OOMKilled bool `json:"oom_killed,omitempty"`
	// Message describes an abnormal exit ("killed by signal SIGKILL").
	Message string `json:"message,omitempty"`
}

// Info describes a running shim.
type Info struct {
	PodID      string
	Pid        int
	Containers int

	// Goroutines and Fds the shim holds now, to check that sessions and
	// containers leave nothing behind.
	Goroutines int
	Fds        int
}

// CreateRequest creates a container in the CRI "created" state: its init
// runs and waits; the user process has not run yet.
type CreateRequest struct {
	// ID is the container ID (letters, digits, '_', '+', '-', '.').
	ID string
	// Bundle is a directory holding config.json, the OCI runtime spec. The
	// root filesystem must already be mounted at spec.Root.Path (relative
	// paths are relative to Bundle).
	Bundle string
	// LogPath is the container's CRI log file (its directory must exist).
	// Empty: the output is read and discarded.
	LogPath string
	// Stdin keeps a pipe to the container's stdin open; StdinOnce is
	// recorded for attach.
	Stdin, StdinOnce bool
	// Tty gives the container a pseudo-terminal; its output is logged as
	// stdout.
	Tty bool
	// MaxLogLineSize is the longest log record; 0 means
	// DefaultMaxLogLineSize, negative means no limit.
	MaxLogLineSize int
}

// CreateResponse answers Create.
type CreateResponse struct {
	Pid int
}

// IDRequest names one container.
type IDRequest struct {
	ID string
}

// SignalRequest sends a signal to a container's init, or with All to every
// process of the container.
type SignalRequest struct {
	ID     string
	Signal int
	All    bool
}

// DeleteRequest forgets a container. A running container is refused unless
// Force (then it is killed first).
type DeleteRequest struct {
	ID    string
	Force bool
}

// ExecSyncRequest runs a command in a running container and collects its
// output.
type ExecSyncRequest struct {
	ID  string
	Cmd []string
	// Env is added to the container's environment (same name: Env wins).
	Env []string
	// Timeout kills the command when it runs longer; 0 means no limit.
	Timeout time.Duration
	// OutputCap is how many bytes of each stream are kept; the rest is read
	// and discarded. 0 means DefaultExecOutputCap; at most MaxExecOutputCap.
	OutputCap int
}

// ExecSyncResponse is the result of ExecSync.
type ExecSyncResponse struct {
	ExitCode                         int32
	Stdout, Stderr                   []byte
	StdoutTruncated, StderrTruncated bool
	// TimedOut: the command ran past Timeout and was killed (ExitCode 137).
	TimedOut bool
}

// ListResponse answers List.
type ListResponse struct {
	Containers []ContainerState
}

// Empty is the argument or reply of calls that carry nothing.
type Empty struct{}

// Errors a client can tell apart with errors.Is.
var (
	// ErrShimGone: the shim does not answer (its socket refuses, or the
	// connection broke); it died or was killed. Read the containers' last
	// known state with ReadState.
	ErrShimGone = errors.New("shim is gone")
	// ErrNotFound: no such container in this shim.
	ErrNotFound = errors.New("not found")
	// ErrExists: the container or the shim already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a request field is invalid (the message names it).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotRunning: the container is not running (or, for Start, not in
	// the created state).
	ErrNotRunning = errors.New("not running")
	// ErrFailedPrecondition: the call does not fit the current state
	// (Delete of a running container without Force, Shutdown with
	// containers left).
	ErrFailedPrecondition = errors.New("failed precondition")
)

// ErrorKinds lists the kinds an error text from the shim may start with.
var ErrorKinds = []error{ErrNotFound, ErrExists, ErrInvalid, ErrNotRunning, ErrFailedPrecondition, ErrShimGone}

// Error is an error of a known kind; its text is "<kind>: <message>" so that
// it survives the trip over the wire as a string.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an error of the given kind.
func Errorf(kind error, msg string) error { return &Error{Kind: kind, Msg: msg} }
