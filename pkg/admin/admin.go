// Package admin is berthd's small control service for what CRI has no RPC
// for: importing an image archive into a running daemon. It shares the CRI
// socket and uses protobuf's wrapper types, so it needs no generated code.
package admin

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	serviceName  = "berth.admin.v1.Admin"
	importMethod = "/" + serviceName + "/ImportImage"
)

// Imported is one image an import recorded.
type Imported struct {
	ID       string   `json:"id"`
	RepoTags []string `json:"repoTags"`
}

// Importer imports the archive at path (a path on the node).
type Importer func(ctx context.Context, path string) ([]Imported, error)

// Register adds the admin service to g.
func Register(g *grpc.Server, imp Importer) {
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "ImportImage",
			Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.StringValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, req any) (any, error) {
					path := req.(*wrapperspb.StringValue).GetValue()
					if path == "" {
						return nil, status.Error(codes.InvalidArgument, "path: must not be empty")
					}
					imgs, err := imp(ctx, path)
					if err != nil {
						return nil, err
					}
					data, err := json.Marshal(imgs)
					if err != nil {
						return nil, err
					}
					return wrapperspb.String(string(data)), nil
				}
				if ic == nil {
					return h(ctx, in)
				}
				return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: importMethod}, h)
			},
		}},
	}, struct{}{})
}

// Import asks the daemon behind conn to import the archive at path.
func Import(ctx context.Context, conn *grpc.ClientConn, path string) ([]Imported, error) {
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, importMethod, wrapperspb.String(path), out); err != nil {
		return nil, err
	}
	var imgs []Imported
	if err := json.Unmarshal([]byte(out.GetValue()), &imgs); err != nil {
		return nil, err
	}
	return imgs, nil
}
