package main

import (
	"io"
	"os"
	"sync"
	"time"
)

// copyBufSize is the buffer of each output copier: small, because every
// running container keeps two of them for its whole life; a pipe holds
// 64 KiB while the copier catches up, and crilog batches records itself.
const copyBufSize = 8 << 10

// copiers drain a process's output pipes (or pty) into writers.
type copiers struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	files []*os.File
}

// add copies r into w until EOF (or until r is closed), then closes w.
func (c *copiers) add(r *os.File, w io.WriteCloser) {
	c.mu.Lock()
	c.files = append(c.files, r)
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, copyBufSize)
		// Hide os.File's WriterTo so that the buffer above is the one used.
		// Any error ends the copy: a pty master reads EIO once the
		// terminal's last user closed it, which is its end of file.
		io.CopyBuffer(w, struct{ io.Reader }{r}, buf)
		w.Close()
	}()
}

// wait waits until every copier saw the end of its input, for at most d.
// Processes that outlive the one that was waited for (background children
// in a shared PID namespace) can keep a pipe open forever; then the read
// ends are closed, which ends the copies. It reports whether all input was
// drained. The read ends are closed in any case.
func (c *copiers) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	drained := true
	select {
	case <-done:
	case <-time.After(d):
		drained = false
	}
	c.mu.Lock()
	for _, f := range c.files {
		f.Close()
	}
	c.files = nil
	c.mu.Unlock()
	if !drained {
		select {
		case <-done:
		case <-time.After(time.Second):
			// A read in a blocking fd does not end on close; give up on it.
		}
	}
	return drained
}

// capBuffer keeps the first max bytes written to it and counts the rest,
// which is read (so the writer never blocks) and thrown away.
type capBuffer struct {
	buf       []byte
	max       int
	truncated bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		take := min(room, len(p))
		if b.buf == nil {
			// Grow in steps, not to max at once: most output is small.
			b.buf = make([]byte, 0, min(b.max, max(take, 4<<10)))
		}
		b.buf = append(b.buf, p[:take]...)
		if take < len(p) {
			b.truncated = true
		}
	} else if len(p) > 0 {
		b.truncated = true
	}
	return len(p), nil
}

func (b *capBuffer) Close() error { return nil }

// discard is a WriteCloser that drops everything (a container without a
// log path).
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }
