package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/pkg/podfiles"
	"github.com/berth-runtime/berth/server/store"
)

// invalid is a request error naming the field at fault.
func invalid(field, format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, a...))
}

// toStatus maps an error from berth's packages to a gRPC status, keeping
// its text. An error that already is a status passes through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, store.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, store.ErrNameReserved):
		code = codes.AlreadyExists
	case errors.Is(err, images.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, images.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, images.ErrUnauthorized):
		code = codes.Unauthenticated
	case errors.Is(err, images.ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, images.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, images.ErrNoProgress), errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, images.ErrBadContent):
		code = codes.FailedPrecondition
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

// requestError answers InvalidArgument for an error that names a request
// field (the packages building pods and specs mark those with ErrInvalid),
// prefixing the field with where it sits in the request; other errors pass.
func requestError(prefix string, err error) error {
	if errors.Is(err, podfiles.ErrInvalid) || errors.Is(err, spec.ErrInvalid) {
		return status.Error(codes.InvalidArgument, prefix+err.Error())
	}
	return err
}
