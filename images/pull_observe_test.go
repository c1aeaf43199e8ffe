package images

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestPullOutcome(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, "success"},
		{errorf(ErrNotFound, "manifest unknown"), "not_found"},
		{&kindError{kind: ErrUnauthorized, err: errors.New("pull x: 401")}, "unauthorized"},
		{fmt.Errorf("wrapped: %w", errorf(ErrNoProgress, "no data received for 1m")), "no_progress"},
		{withKind(ErrUnavailable, errors.New("dial tcp: refused")), "unavailable"},
		{context.Canceled, "canceled"},
		{errors.New("something else"), "failed"},
	}
	for _, tc := range cases {
		if got := PullOutcome(tc.err); got != tc.want {
			t.Errorf("PullOutcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
