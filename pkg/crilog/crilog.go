// Package crilog writes container output in the Kubernetes CRI log format,
// the one the kubelet reads back for `kubectl logs`:
//
//	<timestamp> <stream> <tag> <content>\n
//
// timestamp is RFC 3339 with nanoseconds in the daemon's local zone (what
// containerd writes: time.Now().Format(time.RFC3339Nano)), stream is "stdout"
// or "stderr", and tag is "F" for the last piece of a line and "P" for a
// piece that the reader must join with what follows.
//
// Line splitting follows containerd's CRI logger, which the kubelet and log
// collectors are tested against:
//   - a line longer than the maximum line size is cut into P pieces of
//     exactly that size, then an F piece with the rest;
//   - a trailing "\r\n" ends a line like "\n" and the "\r" is dropped;
//   - output that ends without a newline (the stream is closed) is written as
//     a P piece: no newline was ever seen, and the kubelet then prints it
//     without adding one, exactly as the container wrote it.
//
// Each record is written with a single write(2) under one lock per file, so
// stdout and stderr records never mix inside a line, and Reopen can swap the
// file between any two records without losing or splitting one.
package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// flushSize bounds how much formatted output one stream collects before it
// writes: one write(2) per batch, not per line.
const flushSize = 64 << 10

// ErrClosed is returned by a stream written after Close.
var ErrClosed = errors.New("crilog: write to closed stream")

// Writer appends CRI log records to one container's log file. It is safe for
// concurrent use by the stdout and stderr copiers and a caller of Reopen.
type Writer struct {
	path    string
	maxLine int

	mu      sync.Mutex // guards the fields below and every write to f
	f       *os.File
	streams map[*stream]struct{}
	err     error
	dropped uint64
}

// Open opens path for appending, creating it with mode 0640. Its directory
// must exist. maxLineSize is the longest content of one record; a longer line
// is split into partial records. Zero or less means no limit.
func Open(path string, maxLineSize int) (*Writer, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	return &Writer{path: path, maxLine: maxLineSize, f: f, streams: map[*stream]struct{}{}}, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("crilog: %w", err)
	}
	return f, nil
}

// Path returns the log file's path.
func (w *Writer) Path() string { return w.path }

// Stream returns the writer for one output stream, "stdout" or "stderr".
// Everything written to it is split into lines and appended as records; its
// Close writes a pending unterminated line as a partial record. Writes never
// fail because of the log file (a container blocked on a full pipe is worse
// than a lost log line); see Err for the last such failure.
func (w *Writer) Stream(name string) io.WriteCloser {
	if name != "stdout" && name != "stderr" {
		return badStream(name)
	}
	s := &stream{w: w, name: name}
	w.mu.Lock()
	if w.f == nil {
		s.closed = true
	} else {
		w.streams[s] = struct{}{}
	}
	w.mu.Unlock()
	return s
}

// Reopen closes and reopens the log file by path, so that output goes to a
// new file after the old one was renamed (log rotation). If the new file
// cannot be opened, the old one stays in use and the error is returned.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("crilog: reopen of a closed writer")
	}
	f, err := openLog(w.path)
	if err != nil {
		return err
	}
	old := w.f
	w.f = f
	w.err = nil
	if err := old.Close(); err != nil {
		return fmt.Errorf("crilog: close rotated log: %w", err)
	}
	return nil
}

// Err returns the last error writing the log file since Open or the last
// successful Reopen.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Dropped returns how many records could not be written since Open.
func (w *Writer) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Close writes what the open streams still hold as partial records, then
// closes the file. Later writes to its streams fail with ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	streams := make([]*stream, 0, len(w.streams))
	for s := range w.streams {
		streams = append(streams, s)
	}
	w.mu.Unlock()
	for _, s := range streams {
		s.Close()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	return nil
}

// write appends formatted records to the file in one call.
func (w *Writer) write(rec []byte, records int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		w.dropped += uint64(records)
		return
	}
	if _, err := w.f.Write(rec); err != nil {
		w.err = err
		w.dropped += uint64(records)
	}
}

// stream splits one output stream into records.
type stream struct {
	w    *Writer
	name string

	mu      sync.Mutex
	closed  bool
	pend    []byte // start of a line that has no newline yet
	rec     []byte // formatted records not yet written
	records int    // how many records rec holds
	ts      []byte // timestamp of this write
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	n := len(p)
	s.stamp()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.pend = append(s.pend, p...)
			s.splitPending()
			break
		}
		if len(s.pend) > 0 {
			s.pend = append(s.pend, p[:i]...)
			s.line(s.pend)
			s.pend = s.pend[:0]
		} else {
			s.line(p[:i])
		}
		p = p[i+1:]
		if len(s.rec) >= flushSize {
			s.flush()
		}
	}
	s.flush()
	// Don't keep a huge buffer alive for one unusually long line.
	if cap(s.pend) > 4*flushSize && len(s.pend) < flushSize {
		s.pend = append([]byte(nil), s.pend...)
	}
	return n, nil
}

// Close writes a pending unterminated line as a partial record.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if len(s.pend) > 0 {
		s.stamp()
		content := s.pend
		for s.w.maxLine > 0 && len(content) > s.w.maxLine {
			s.record('P', content[:s.w.maxLine])
			content = content[s.w.maxLine:]
		}
		s.record('P', content)
		s.pend = nil
		s.flush()
	}
	s.w.mu.Lock()
	delete(s.w.streams, s)
	s.w.mu.Unlock()
	return nil
}

func (s *stream) stamp() {
	s.ts = time.Now().AppendFormat(s.ts[:0], time.RFC3339Nano)
}

// line formats one complete line (without its "\n").
func (s *stream) line(content []byte) {
	if n := len(content); n > 0 && content[n-1] == '\r' {
		content = content[:n-1]
	}
	for s.w.maxLine > 0 && len(content) > s.w.maxLine {
		s.record('P', content[:s.w.maxLine])
		content = content[s.w.maxLine:]
	}
	s.record('F', content)
}

// splitPending writes full-size partial records from the pending line while
// more than maxLine bytes are waiting. A lone trailing "\r" past the limit is
// held back: if "\n" follows, it belongs to the line ending and is dropped.
func (s *stream) splitPending() {
	max := s.w.maxLine
	if max <= 0 {
		return
	}
	off := 0
	for {
		rest := len(s.pend) - off
		if rest <= max || rest == max+1 && s.pend[len(s.pend)-1] == '\r' {
			break
		}
		s.record('P', s.pend[off:off+max])
		off += max
		if len(s.rec) >= flushSize {
			s.flush()
		}
	}
	if off > 0 {
		s.pend = s.pend[:copy(s.pend, s.pend[off:])]
	}
}

func (s *stream) record(tag byte, content []byte) {
	s.rec = append(s.rec, s.ts...)
	s.rec = append(s.rec, ' ')
	s.rec = append(s.rec, s.name...)
	s.rec = append(s.rec, ' ', tag, ' ')
	s.rec = append(s.rec, content...)
	s.rec = append(s.rec, '\n')
	s.records++
}

func (s *stream) flush() {
	if len(s.rec) == 0 {
		return
	}
	s.w.write(s.rec, s.records)
	s.rec = s.rec[:0]
	s.records = 0
	if cap(s.rec) > 4*flushSize {
		s.rec = nil
	}
}

// badStream is what Stream returns for a name that is no CRI stream.
type badStream string

func (b badStream) Write([]byte) (int, error) {
	return 0, fmt.Errorf("crilog: %q is not a CRI log stream (stdout or stderr)", string(b))
}

func (b badStream) Close() error { return nil }
