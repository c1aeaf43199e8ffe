// Package shim is berthd's side of the per-pod monitor process, berth-shim:
// Launch (start a detached shim for a pod), Connect and a Client for its
// calls, and ReadState (a container's last recorded state, readable without
// the shim).
//
// A shim is the parent of the pod's containers (berth-runtime, or a
// configured runtime binary, creates them for it): it owns their stdio,
// writes their CRI logs, reaps them and records their exits. berthd can then
// be restarted or killed at any time without touching running containers;
// it reconnects with Connect.
//
// The protocol is net/rpc's wire protocol with the gob codec over a unix
// socket (<dir>/shim.sock), framed as oci/shim/api.RPCRequest says; the
// types live in oci/shim/api and are re-exported here. Both ends speak it
// with small implementations of their own (rpc_conn.go here), which keeps
// net/rpc, and the html/template it links, out of berthd and every shim.
package shim

import (
	"errors"
	"strings"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// Protocol types; see oci/shim/api.
type (
	Status           = api.Status
	ContainerState   = api.ContainerState
	Info             = api.Info
	CreateRequest    = api.CreateRequest
	CreateResponse   = api.CreateResponse
	IDRequest        = api.IDRequest
	SignalRequest    = api.SignalRequest
	DeleteRequest    = api.DeleteRequest
	ExecSyncRequest  = api.ExecSyncRequest
	ExecSyncResponse = api.ExecSyncResponse
	ListResponse     = api.ListResponse
	Empty            = api.Empty
	Error            = api.Error
)

const (
	StatusCreated = api.StatusCreated
	StatusRunning = api.StatusRunning
	StatusStopped = api.StatusStopped
	StatusUnknown = api.StatusUnknown

	SocketName            = api.SocketName
	ContainersDir         = api.ContainersDir
	StateFile             = api.StateFile
	LibcontainerDir       = api.LibcontainerDir
	DefaultMaxLogLineSize = api.DefaultMaxLogLineSize
	DefaultExecOutputCap  = api.DefaultExecOutputCap
	MaxExecOutputCap      = api.MaxExecOutputCap
)

// Errors a client can tell apart with errors.Is; see oci/shim/api.
var (
	ErrShimGone           = api.ErrShimGone
	ErrNotFound           = api.ErrNotFound
	ErrExists             = api.ErrExists
	ErrInvalid            = api.ErrInvalid
	ErrNotRunning         = api.ErrNotRunning
	ErrFailedPrecondition = api.ErrFailedPrecondition
)

// ReadState returns the last state the shim in dir recorded for container
// id, whether the shim runs or not. A missing record matches os.ErrNotExist.
func ReadState(dir, id string) (ContainerState, error) { return api.ReadState(dir, id) }

// StatePath is where the shim in dir records container id.
func StatePath(dir, id string) string { return api.StatePath(dir, id) }

// ValidateID checks a container ID.
func ValidateID(id string) error { return api.ValidateID(id) }

// parseError turns an error text received from the shim back into an error
// of its kind, or a plain error.
func parseError(s string) error {
	for _, k := range api.ErrorKinds {
		if p := k.Error() + ": "; strings.HasPrefix(s, p) {
			return &Error{Kind: k, Msg: s[len(p):]}
		}
	}
	return errors.New(s)
}

// errorf returns an error of the given kind.
func errorf(kind error, msg string) error { return api.Errorf(kind, msg) }
