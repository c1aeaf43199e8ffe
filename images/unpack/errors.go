package unpack

import (
	"errors"
	"fmt"
)

// EscapeError reports a tar entry that tried to create, modify or link to
// something outside the layer directory. Apply returns it, possibly
// wrapped; use errors.As to detect it.
type EscapeError struct {
	// Entry is the entry name as written in the tar header.
	Entry string
	// Reason says how the entry tried to leave the layer directory.
	Reason string
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("unpack: entry %q escapes the layer directory: %s", e.Entry, e.Reason)
}

// entryError attaches the entry name to err. Escape errors already name
// their entry and are returned unchanged so errors.As sees them directly.
func entryError(entry string, err error) error {
	if err == nil {
		return nil
	}
	var esc *EscapeError
	if errors.As(err, &esc) {
		return err
	}
	return fmt.Errorf("unpack: entry %q: %w", entry, err)
}
