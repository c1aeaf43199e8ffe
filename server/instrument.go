package server

import (
	"context"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/pkg/metrics"
)

// Interceptors returns the server options that wrap every RPC: request
// validation, a debug line with the method, ids and duration, recovery of a
// panic into codes.Internal, mapping of errors to gRPC codes, and the RPC
// metrics (m may be nil: metrics off).
func Interceptors(log *logrus.Entry, m *metrics.Metrics) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
			start := time.Now()
			method := shortMethod(info.FullMethod)
			defer func() {
				if r := recover(); r != nil {
					log.WithField("method", method).Errorf("panic: %v\n%s", r, debug.Stack())
					resp, err = nil, status.Errorf(codes.Internal, "%s: internal error: %v", method, r)
				}
				logCall(log, method, req, start, err)
				m.ObserveRPC(method, time.Since(start), status.Code(err))
			}()
			if err = validate(info.FullMethod, req); err != nil {
				return nil, err
			}
			resp, err = handler(ctx, req)
			return resp, toStatus(err)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
			start := time.Now()
			method := shortMethod(info.FullMethod)
			defer func() {
				if r := recover(); r != nil {
					log.WithField("method", method).Errorf("panic: %v\n%s", r, debug.Stack())
					err = status.Errorf(codes.Internal, "%s: internal error: %v", method, r)
				}
				logCall(log, method, nil, start, err)
				m.ObserveRPC(method, time.Since(start), status.Code(err))
			}()
			return toStatus(handler(srv, ss))
		}),
	}
}

func shortMethod(full string) string {
	return full[strings.LastIndexByte(full, '/')+1:]
}

// ids are the identifiers worth a log field, found by the getters the CRI
// request types share.
func ids(req any) logrus.Fields {
	f := logrus.Fields{}
	if r, ok := req.(interface{ GetPodSandboxId() string }); ok && r.GetPodSandboxId() != "" {
		f["pod"] = r.GetPodSandboxId()
	}
	if r, ok := req.(interface{ GetContainerId() string }); ok && r.GetContainerId() != "" {
		f["container"] = r.GetContainerId()
	}
	if r, ok := req.(interface{ GetImage() *runtimeapi.ImageSpec }); ok && r.GetImage() != nil {
		f["image"] = r.GetImage().GetImage()
	}
	return f
}

func logCall(log *logrus.Entry, method string, req any, start time.Time, err error) {
	fields := ids(req)
	fields["method"] = method
	fields["duration"] = time.Since(start).Round(time.Microsecond).String()
	e := log.WithFields(fields)
	if err != nil {
		code := status.Code(err)
		fields["code"] = code.String()
		// Expected answers (not found, bad input) are debug; the rest warn.
		switch code {
		case codes.NotFound, codes.InvalidArgument, codes.Unimplemented, codes.Canceled:
			e.WithError(err).Debug("rpc")
		default:
			e.WithError(err).Warn("rpc failed")
		}
		return
	}
	if e.Logger.IsLevelEnabled(logrus.DebugLevel) {
		e.Debug("rpc")
	}
}
