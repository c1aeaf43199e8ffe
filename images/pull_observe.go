package images

import (
	"context"
	"errors"
	"time"
)

// pullObserver is told how long a pull took and how it ended.
type pullObserver func(d time.Duration, outcome string)

// PulledBytes is how many bytes pulls have received from registries since
// the service started, counted where the progress watchdog sees them.
func (s *Service) PulledBytes() int64 { return s.pulledBytes.Load() }

// ObservePulls has fn told the duration and outcome (see PullOutcome) of
// every pull from a registry; pulls shared by several callers count once.
// Call it before the first pull.
func (s *Service) ObservePulls(fn func(d time.Duration, outcome string)) {
	s.pullObserver = fn
}

// observePull reports a pull that began at start and ended with *err.
func (s *Service) observePull(start time.Time, err *error) {
	if s.pullObserver != nil {
		s.pullObserver(time.Since(start), PullOutcome(*err))
	}
}

// PullOutcome names how a pull ended, for a metric label: "success", one
// word per kind of failure, or "failed" for anything else. The set is
// fixed, so a label built from it stays small.
func PullOutcome(err error) string {
	if err == nil {
		return "success"
	}
	for _, k := range []struct {
		kind error
		name string
	}{
		{ErrNotFound, "not_found"},
		{ErrUnauthorized, "unauthorized"},
		{ErrForbidden, "forbidden"},
		{ErrNoProgress, "no_progress"},
		{ErrUnavailable, "unavailable"},
		{ErrBadContent, "bad_content"},
		{ErrInvalid, "invalid"},
		{context.Canceled, "canceled"},
		{context.DeadlineExceeded, "timeout"},
	} {
		if errors.Is(err, k.kind) {
			return k.name
		}
	}
	return "failed"
}
