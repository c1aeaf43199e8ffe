package main

import (
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

// tee sits between one output copier of a container and its log, and
// copies what is logged into the pipes of attached clients. A client never
// slows the log: its pipe is non-blocking, and what does not fit in the
// pipe (64 KiB by default) is dropped for that client. With nobody attached
// it costs a lock per write.
type tee struct {
	w io.WriteCloser

	mu      sync.Mutex
	clients []*teeClient
	closed  bool
	dropped int64 // bytes not delivered to slow clients
}

func (t *tee) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.mu.Lock()
	if len(t.clients) > 0 {
		t.clients = t.fanOut(p)
	}
	t.mu.Unlock()
	return n, err
}

// fanOut writes p to every client and returns the clients still there; a
// client that closed its end is dropped.
func (t *tee) fanOut(p []byte) []*teeClient {
	keep := t.clients[:0]
	for _, c := range t.clients {
		if writeSome(c.fd, p, &t.dropped) {
			keep = append(keep, c)
		} else {
			unix.Close(c.fd)
		}
	}
	clear(t.clients[len(keep):])
	return keep
}

// teeClient is the write end of one client's pipe, non-blocking; it is
// compared by identity, since a closed descriptor's number is reused.
type teeClient struct{ fd int }

// writeSome writes as much of p as fd takes without waiting and counts the
// rest as dropped. It reports false when the reader is gone.
func writeSome(fd int, p []byte, dropped *int64) bool {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		switch err {
		case nil:
			p = p[n:]
		case unix.EINTR:
		case unix.EAGAIN:
			*dropped += int64(len(p))
			return true
		default: // EPIPE: the client closed its end
			return false
		}
	}
	return true
}

// add makes fd a client and owns it from then on; nil (and fd closed) when
// the stream already ended.
func (t *tee) add(fd int) *teeClient {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		unix.Close(fd)
		return nil
	}
	c := &teeClient{fd: fd}
	t.clients = append(t.clients, c)
	return c
}

// remove closes a client's pipe, if the tee still has it.
func (t *tee) remove(c *teeClient) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range t.clients {
		if x == c {
			unix.Close(c.fd)
			t.clients = append(t.clients[:i], t.clients[i+1:]...)
			return
		}
	}
}

// Close ends the stream: the log's, and every client's (which reads EOF).
func (t *tee) Close() error {
	t.mu.Lock()
	for _, c := range t.clients {
		unix.Close(c.fd)
	}
	t.clients = nil
	t.closed = true
	t.mu.Unlock()
	return t.w.Close()
}
