package main

import (
	"errors"
	"fmt"
	"os"
)

// cleanups undoes what the benchmark set up, last in first out, so that
// the daemons stop before their directories are unmounted and removed.
type cleanups struct {
	steps []cleanupStep
}

type cleanupStep struct {
	what string
	fn   func() error
}

func (c *cleanups) add(what string, fn func() error) {
	c.steps = append(c.steps, cleanupStep{what, fn})
}

// run runs every step even when earlier ones fail: a daemon that would not
// stop must not keep the registry open or the temp dir on disk.
func (c *cleanups) run() error {
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		if err := s.fn(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: cleanup: %s: %v\n", s.what, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.what, err))
		}
	}
	c.steps = nil
	return errors.Join(errs...)
}
