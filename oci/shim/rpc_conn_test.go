package shim

import (
	"bufio"
	"encoding/gob"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// rpcPeer reads calls from one end of a pipe and hands them to the test,
// which answers them in the order it likes.
type rpcPeer struct {
	conn net.Conn
	dec  *gob.Decoder
	w    *bufio.Writer
	enc  *gob.Encoder
}

func newRPCPeer(t *testing.T) (*rpcPeer, *rpcConn) {
	a, b := net.Pipe()
	w := bufio.NewWriter(b)
	f := &rpcPeer{conn: b, dec: gob.NewDecoder(b), w: w, enc: gob.NewEncoder(w)}
	c := newRPCConn(a)
	t.Cleanup(func() { c.Close(); b.Close() })
	return f, c
}

func (f *rpcPeer) next(t *testing.T) (api.RPCRequest, api.IDRequest) {
	t.Helper()
	var req api.RPCRequest
	var arg api.IDRequest
	if err := f.dec.Decode(&req); err != nil {
		t.Fatal(err)
	}
	if err := f.dec.Decode(&arg); err != nil {
		t.Fatal(err)
	}
	return req, arg
}

func (f *rpcPeer) answer(t *testing.T, req api.RPCRequest, body any, errText string) {
	t.Helper()
	if errText != "" {
		body = api.RPCInvalid{}
	}
	if err := f.enc.Encode(&api.RPCResponse{ServiceMethod: req.ServiceMethod, Seq: req.Seq, Error: errText}); err != nil {
		t.Fatal(err)
	}
	if err := f.enc.Encode(body); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
		return nil
	}
}

func TestRPCConnMatchesAnswersOutOfOrder(t *testing.T) {
	f, c := newRPCPeer(t)
	var r1, r2 ContainerState
	done1 := make(chan (<-chan error), 1)
	go func() { done1 <- c.start(api.MethodState, &IDRequest{ID: "one"}, &r1) }()
	req1, arg1 := f.next(t)
	done2 := make(chan (<-chan error), 1)
	go func() { done2 <- c.start(api.MethodState, &IDRequest{ID: "two"}, &r2) }()
	req2, arg2 := f.next(t)
	if arg1.ID != "one" || arg2.ID != "two" || req1.Seq == req2.Seq {
		t.Fatalf("requests %+v %+v, %+v %+v", req1, arg1, req2, arg2)
	}
	// The second call is answered first; an answer nobody waits for
	// (an unknown Seq) is skipped.
	f.answer(t, api.RPCRequest{ServiceMethod: api.MethodState, Seq: 999}, &ContainerState{ID: "stray"}, "")
	f.answer(t, req2, &ContainerState{ID: "two", Pid: 2}, "")
	if err := wait(t, <-done2); err != nil || r2.ID != "two" || r2.Pid != 2 {
		t.Fatalf("second call: %v %+v", err, r2)
	}
	f.answer(t, req1, nil, "not found: container one")
	err := wait(t, <-done1)
	var se serverError
	if !errors.As(err, &se) || !errors.Is(parseError(string(se)), ErrNotFound) {
		t.Fatalf("first call: %v, want a server error of kind not found", err)
	}
	if r1.ID != "" {
		t.Fatalf("reply filled despite the error: %+v", r1)
	}
}

func TestRPCConnFailsPendingCallsWhenTheShimGoes(t *testing.T) {
	f, c := newRPCPeer(t)
	var r ContainerState
	done := make(chan (<-chan error), 1)
	go func() { done <- c.start(api.MethodWait, &IDRequest{ID: "w"}, &r) }()
	f.next(t)
	f.conn.Close()
	if err := wait(t, <-done); !errors.Is(err, errConnClosed) || !gone(err) {
		t.Fatalf("pending call: %v, want the connection's end", err)
	}
	// Later calls fail at once.
	if err := wait(t, c.start(api.MethodState, &IDRequest{ID: "x"}, &r)); !errors.Is(err, errConnClosed) {
		t.Fatalf("later call: %v", err)
	}
}

// A reply that does not decode fails its call and ends the connection:
// the stream is out of step after it.
func TestRPCConnReplyThatDoesNotDecode(t *testing.T) {
	f, c := newRPCPeer(t)
	var r ContainerState
	done := make(chan (<-chan error), 1)
	go func() { done <- c.start(api.MethodState, &IDRequest{ID: "x"}, &r) }()
	req, _ := f.next(t)
	f.answer(t, req, "not a container state", "")
	if err := wait(t, <-done); !errors.Is(err, errConnClosed) || !gone(err) {
		t.Fatalf("call: %v, want the connection's end", err)
	}
	if err := wait(t, c.start(api.MethodState, &IDRequest{ID: "y"}, &r)); !errors.Is(err, errConnClosed) {
		t.Fatalf("later call: %v", err)
	}
}
