package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kinds of pull failure. They keep the registry's meaning so the CRI server
// can answer with the matching gRPC code.
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("denied")
	ErrUnavailable  = errors.New("registry unreachable")
	ErrNoProgress   = errors.New("no progress")
	ErrInvalid      = errors.New("invalid")
	ErrBadContent   = errors.New("bad image content")
)

// kindError attaches a kind to an error while keeping its text.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string                { return e.err.Error() }
func (e *kindError) Unwrap() []error              { return []error{e.kind, e.err} }
func withKind(kind, err error) error              { return &kindError{kind: kind, err: err} }
func errorf(kind error, f string, a ...any) error { return withKind(kind, fmt.Errorf(f, a...)) }

// classify gives a registry or network error its kind.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var k *kindError
	if errors.As(err, &k) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return withKind(ErrNotFound, err)
		case http.StatusUnauthorized:
			return withKind(ErrUnauthorized, err)
		case http.StatusForbidden:
			return withKind(ErrForbidden, err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return withKind(ErrNotFound, err)
			case transport.UnauthorizedErrorCode:
				return withKind(ErrUnauthorized, err)
			case transport.DeniedErrorCode:
				return withKind(ErrForbidden, err)
			}
		}
		if te.StatusCode >= 500 {
			return withKind(ErrUnavailable, err)
		}
		return err
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return withKind(ErrUnavailable, err)
	}
	return err
}
