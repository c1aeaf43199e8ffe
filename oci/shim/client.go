package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// DefaultCallTimeout bounds a call whose context has no deadline. Wait is
// the exception: it lasts as long as its context.
const DefaultCallTimeout = 2 * time.Minute

// Client talks to one shim. It is safe for concurrent use; calls run in
// parallel over one connection. After the connection breaks, the next call
// dials again, and calls fail with ErrShimGone while the shim does not answer.
type Client struct {
	dir  string
	sock string

	mu  sync.Mutex
	rc  *rpcConn
	pid int
	pod string
}

// Connect connects to the shim running in dir (after a berthd restart) and
// checks that it answers. A shim that is not there gives ErrShimGone.
func Connect(dir string) (*Client, error) {
	return connect(context.Background(), dir)
}

func connect(ctx context.Context, dir string) (*Client, error) {
	c := &Client{dir: dir, sock: filepath.Join(dir, SocketName)}
	info, err := c.Info(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.pid, c.pod = info.Pid, info.PodID
	c.mu.Unlock()
	return c, nil
}

// Dir is the shim's directory.
func (c *Client) Dir() string { return c.dir }

// Pid is the shim's process ID, as it reported when connecting.
func (c *Client) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// PodID is the pod the shim serves, as it reported when connecting.
func (c *Client) PodID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pod
}

// Close closes the connection. The shim and its containers keep running.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc == nil {
		return nil
	}
	err := c.rc.Close()
	c.rc = nil
	return err
}

func (c *Client) conn() (*rpcConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc != nil {
		return c.rc, nil
	}
	addr, release, err := api.SocketAddr(filepath.Dir(c.sock))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	conn, err := net.DialTimeout("unix", addr, 5*time.Second)
	release()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	c.rc = newRPCConn(conn)
	return c.rc, nil
}

// drop forgets a broken connection so that the next call dials again.
func (c *Client) drop(rc *rpcConn) {
	c.mu.Lock()
	if c.rc == rc {
		c.rc = nil
	}
	c.mu.Unlock()
	rc.Close()
}

func (c *Client) call(ctx context.Context, method string, args, reply any) error {
	if _, ok := ctx.Deadline(); !ok && method != api.MethodWait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := c.conn()
	if err != nil {
		return err
	}
	select {
	case err = <-rc.start(method, args, reply):
	case <-ctx.Done():
		return fmt.Errorf("shim: %s: %w", method, ctx.Err())
	}
	if err == nil {
		return nil
	}
	var se serverError
	if errors.As(err, &se) {
		return parseError(string(se))
	}
	if gone(err) {
		c.drop(rc)
		return fmt.Errorf("%w: %s: %v", ErrShimGone, method, err)
	}
	return fmt.Errorf("shim: %s: %w", method, err)
}

// gone tells whether err means the connection to the shim is lost.
func gone(err error) bool {
	var ne *net.OpError
	return errors.Is(err, errConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, os.ErrNotExist) || errors.As(err, &ne)
}

// invoke makes a call with a fresh reply, which a call abandoned on ctx may
// still fill after invoke returned.
func invoke[R any](ctx context.Context, c *Client, method string, args any) (R, error) {
	r := new(R)
	if err := c.call(ctx, method, args, r); err != nil {
		var zero R
		return zero, err
	}
	return *r, nil
}

// Info asks the shim who it is; it doubles as a liveness check.
func (c *Client) Info(ctx context.Context) (Info, error) {
	return invoke[Info](ctx, c, api.MethodInfo, &Empty{})
}

// Create creates a container and leaves it in the created state.
func (c *Client) Create(ctx context.Context, req CreateRequest) (CreateResponse, error) {
	return invoke[CreateResponse](ctx, c, api.MethodCreate, &req)
}

// Start runs the user process of a created container.
func (c *Client) Start(ctx context.Context, id string) error {
	_, err := invoke[Empty](ctx, c, api.MethodStart, &IDRequest{ID: id})
	return err
}

// Signal sends sig to the container's init, or to all its processes.
func (c *Client) Signal(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	_, err := invoke[Empty](ctx, c, api.MethodSignal, &SignalRequest{ID: id, Signal: int(sig), All: all})
	return err
}

// State returns one container's state.
func (c *Client) State(ctx context.Context, id string) (ContainerState, error) {
	return invoke[ContainerState](ctx, c, api.MethodState, &IDRequest{ID: id})
}

// List returns the state of every container of the shim.
func (c *Client) List(ctx context.Context) ([]ContainerState, error) {
	r, err := invoke[ListResponse](ctx, c, api.MethodList, &Empty{})
	return r.Containers, err
}

// Wait blocks until the container has exited (and its exit is recorded) or
// ctx ends; it has no default timeout.
func (c *Client) Wait(ctx context.Context, id string) (ContainerState, error) {
	return invoke[ContainerState](ctx, c, api.MethodWait, &IDRequest{ID: id})
}

// Delete forgets a container: destroys it (and its cgroup), closes its log,
// removes its record. Deleting an unknown container succeeds. A running
// container needs force (it is killed first).
func (c *Client) Delete(ctx context.Context, id string, force bool) error {
	_, err := invoke[Empty](ctx, c, api.MethodDelete, &DeleteRequest{ID: id, Force: force})
	return err
}

// ExecSync runs a command in a running container and returns its output.
// Without a deadline in ctx, the call may last req.Timeout plus a margin.
func (c *Client) ExecSync(ctx context.Context, req ExecSyncRequest) (ExecSyncResponse, error) {
	if _, ok := ctx.Deadline(); !ok && req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout+DefaultCallTimeout)
		defer cancel()
	}
	return invoke[ExecSyncResponse](ctx, c, api.MethodExecSync, &req)
}

// ReopenLog reopens a running container's log file (after rotation).
func (c *Client) ReopenLog(ctx context.Context, id string) error {
	_, err := invoke[Empty](ctx, c, api.MethodReopenLog, &IDRequest{ID: id})
	return err
}

// Shutdown makes the shim exit; it refuses while it still has containers.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := invoke[Empty](ctx, c, api.MethodShutdown, &Empty{})
	if err == nil {
		c.Close()
	}
	return err
}
