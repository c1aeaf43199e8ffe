package shim

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// errConnClosed fails calls on a connection that was closed or broke.
var errConnClosed = errors.New("shim connection closed")

// serverError is an error text the shim answered a call with.
type serverError string

func (e serverError) Error() string { return string(e) }

// rpcConn is a client of the control socket's protocol (api.RPCRequest) on
// one connection: calls are sent as they come and answered in any order.
type rpcConn struct {
	conn net.Conn

	wmu sync.Mutex // one request (header and argument) at a time
	w   *bufio.Writer
	enc *gob.Encoder

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]*rpcCall
	err     error // why the connection ended; set once
}

// rpcCall is one call waiting for its answer.
type rpcCall struct {
	reply any
	done  chan error // buffered: the reader never waits for the caller
}

func newRPCConn(conn net.Conn) *rpcConn {
	w := bufio.NewWriter(conn)
	c := &rpcConn{conn: conn, w: w, enc: gob.NewEncoder(w), pending: map[uint64]*rpcCall{}}
	go c.read()
	return c
}

// start sends a call; its answer, decoded into reply, arrives on the
// returned channel. A caller that stops waiting leaves reply to be filled
// (or not) later.
func (c *rpcConn) start(method string, args, reply any) <-chan error {
	call := &rpcCall{reply: reply, done: make(chan error, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		call.done <- err
		return call.done
	}
	c.seq++
	seq := c.seq
	c.pending[seq] = call
	c.mu.Unlock()

	c.wmu.Lock()
	err := c.enc.Encode(&api.RPCRequest{ServiceMethod: method, Seq: seq})
	if err == nil {
		err = c.enc.Encode(args)
	}
	if err == nil {
		err = c.w.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		// A request cut short leaves the stream unusable.
		c.fail(fmt.Errorf("%w: send %s: %w", errConnClosed, method, err))
	}
	return call.done
}

// read delivers answers until the connection ends, then fails every call
// still pending.
func (c *rpcConn) read() {
	dec := gob.NewDecoder(bufio.NewReader(c.conn))
	for {
		var resp api.RPCResponse
		if err := dec.Decode(&resp); err != nil {
			c.fail(fmt.Errorf("%w: %w", errConnClosed, err))
			return
		}
		c.mu.Lock()
		call := c.pending[resp.Seq]
		delete(c.pending, resp.Seq)
		c.mu.Unlock()

		// The body is the reply, or with an error (or for a call nobody
		// waits for) a value to skip: the zero Value discards it.
		var err, derr error
		if resp.Error != "" {
			err = serverError(resp.Error)
		}
		if call == nil || err != nil {
			derr = dec.DecodeValue(reflect.Value{})
		} else {
			derr = dec.Decode(call.reply)
		}
		if derr != nil {
			// The stream is out of step: nothing after this decodes.
			derr = fmt.Errorf("%w: decode reply to %s: %w", errConnClosed, resp.ServiceMethod, derr)
			if err == nil {
				err = derr
			}
		}
		if call != nil {
			call.done <- err
		}
		if derr != nil {
			c.fail(derr)
			return
		}
	}
}

// fail ends the connection with err (the first cause wins) and fails the
// pending calls.
func (c *rpcConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	pending := c.pending
	c.pending = map[uint64]*rpcCall{}
	err = c.err
	c.mu.Unlock()
	c.conn.Close()
	for _, call := range pending {
		call.done <- err
	}
}

// Close ends the connection; pending and later calls fail.
func (c *rpcConn) Close() error {
	c.fail(errConnClosed)
	return nil
}
