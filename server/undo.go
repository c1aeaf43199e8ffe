package server

import "github.com/sirupsen/logrus"

// undo collects the steps that reverse what a half-done RPC already did,
// so a failure leaves nothing behind. Steps run newest first.
type undo struct {
	steps []func() error
	names []string
}

func (u *undo) add(name string, fn func() error) {
	u.steps = append(u.steps, fn)
	u.names = append(u.names, name)
}

// run reverses everything; failures are logged, since the RPC is already
// failing with the error that matters.
func (u *undo) run(log *logrus.Entry) {
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i](); err != nil {
			log.WithError(err).Warnf("undoing %s", u.names[i])
		}
	}
	u.steps, u.names = nil, nil
}
