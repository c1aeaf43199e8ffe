package spec

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every error caused by the request
// itself, as opposed to the host or the caller.
var ErrInvalid = errors.New("invalid container config")

// Errors a UserDB returns when a name is absent from the image's
// /etc/passwd or /etc/group.
var (
	ErrNoSuchUser  = errors.New("no such user")
	ErrNoSuchGroup = errors.New("no such group")
)

// FieldError is a request error naming the CRI field at fault, spelled as
// in the protobuf definition relative to ContainerConfig (for example
// "linux.security_context.run_as_username" or "mounts[2].container_path").
// Fields of the pod's config carry a "sandbox_config." prefix; fields of the
// image config an "image_config." prefix.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// indexed names one element of a repeated field: indexed("mounts", 2) is
// "mounts[2]".
func indexed(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
