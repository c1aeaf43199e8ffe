package main

import (
	"bufio"
	"encoding/gob"
	"errors"
	"io"
	"log"
	"net"
	"reflect"
	"sync"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// A small server for the control socket's protocol (api.RPCRequest): the
// net/rpc wire protocol with the gob codec, which berthd's client speaks.

// handler decodes the argument of one call and returns the function that
// serves it.
type handler func(dec *gob.Decoder) (func() (any, error), error)

// method adapts a typed RPC implementation to a handler.
func method[Req, Resp any](f func(*Req) (*Resp, error)) handler {
	return func(dec *gob.Decoder) (func() (any, error), error) {
		req := new(Req)
		if err := dec.Decode(req); err != nil {
			return nil, err
		}
		return func() (any, error) {
			r, err := f(req)
			if err != nil {
				return nil, err
			}
			return r, nil
		}, nil
	}
}

type rpcServer struct {
	methods map[string]handler
	// after runs once the successful answer to a method has been written
	// (used by Shutdown, which must answer before the process exits).
	after map[string]func()
	wg    sync.WaitGroup

	// session serves a connection that starts with api.SessionMagic.
	session func(conn net.Conn, r *bufio.Reader)
}

func (s *rpcServer) serve(l net.Listener) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go s.serveConn(conn)
	}
}

func (s *rpcServer) serveConn(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	// A streaming session (session.go) is a connection of its own.
	if b, err := br.Peek(1); err == nil && b[0] == api.SessionMagic && s.session != nil {
		br.Discard(1)
		s.session(conn, br)
		return
	}
	dec := gob.NewDecoder(br)
	w := bufio.NewWriter(conn)
	enc := gob.NewEncoder(w)
	var wmu sync.Mutex
	reply := func(req api.RPCRequest, body any, err error) {
		resp := api.RPCResponse{ServiceMethod: req.ServiceMethod, Seq: req.Seq}
		if err != nil {
			resp.Error = err.Error()
			if resp.Error == "" {
				resp.Error = "error"
			}
			body = api.RPCInvalid{}
		}
		wmu.Lock()
		defer wmu.Unlock()
		if e := enc.Encode(&resp); e == nil {
			if e = enc.Encode(body); e != nil {
				log.Printf("rpc: encode reply to %s: %v", req.ServiceMethod, e)
				// The stream is broken mid-message: drop the connection.
				conn.Close()
				return
			}
			if e = w.Flush(); e != nil {
				conn.Close()
			}
		}
	}
	for {
		var req api.RPCRequest
		if err := dec.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Printf("rpc: read request: %v", err)
			}
			break
		}
		h, ok := s.methods[req.ServiceMethod]
		if !ok {
			// The zero Value discards the argument.
			if err := dec.DecodeValue(reflect.Value{}); err != nil {
				break
			}
			reply(req, nil, errors.New("rpc: can't find method "+req.ServiceMethod))
			continue
		}
		run, err := h(dec)
		if err != nil {
			// A body that does not decode leaves the stream unusable.
			reply(req, nil, errors.New("rpc: bad argument: "+err.Error()))
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			body, err := run()
			reply(req, body, err)
			if err == nil {
				if f := s.after[req.ServiceMethod]; f != nil {
					f()
				}
			}
		}()
	}
}
