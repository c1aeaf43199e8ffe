// Package logging configures berthd's logrus output.
package logging

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
)

// Setup applies level and format to the standard logger. Logs go to
// stderr, which journald collects under systemd.
func Setup(level, format string) error {
	if err := SetLevel(level); err != nil {
		return err
	}
	switch format {
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: "2006-01-02T15:04:05.000000000Z07:00"})
	case "text", "":
		logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02T15:04:05.000000000Z07:00"})
	default:
		return fmt.Errorf("log format %q is not text or json", format)
	}
	logrus.SetOutput(os.Stderr)
	return nil
}

// SetLevel changes the level, e.g. on reload.
func SetLevel(level string) error {
	l, err := logrus.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("log level %q: %v", level, err)
	}
	logrus.SetLevel(l)
	return nil
}
