package api

// The call framing of the control socket: net/rpc's wire protocol with the
// gob codec. Per call, the client sends an RPCRequest and the argument; the
// server answers an RPCResponse and the reply, or an RPCInvalid value when
// the response carries an error. Calls on one connection run concurrently
// and are answered in any order, matched by Seq.
//
// Both ends implement the protocol themselves rather than use net/rpc: its
// debug pages link net/http and html/template, and html/template's
// reflection keeps every exported method of every type in the binary that
// links it (megabytes of berthd, resident in memory).

// RPCRequest matches net/rpc's Request field by field; gob matches structs
// by field names, not type names.
type RPCRequest struct {
	ServiceMethod string
	Seq           uint64
}

// RPCResponse matches net/rpc's Response.
type RPCResponse struct {
	ServiceMethod string
	Seq           uint64
	Error         string
}

// RPCInvalid is the body sent with an error, as net/rpc does.
type RPCInvalid struct{}
