package main

import (
	"bytes"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

type bufCloser struct {
	bytes.Buffer
	closed bool
}

func (b *bufCloser) Close() error { b.closed = true; return nil }

// clientPipe is an attach client's pipe: the tee gets the write end.
func clientPipe(t *testing.T) (r *os.File, w int) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(fds[1], true)
	r = os.NewFile(uintptr(fds[0]), "client")
	t.Cleanup(func() { r.Close() })
	return r, fds[1]
}

// A client that does not read loses what does not fit in its pipe; the
// log gets everything, and a client that reads gets everything.
func TestTeeSlowClientDropsNotLog(t *testing.T) {
	log := &bufCloser{}
	tee := &tee{w: log}
	_, slowW := clientPipe(t)
	fastR, fastW := clientPipe(t)
	if tee.add(slowW) == nil || tee.add(fastW) == nil {
		t.Fatal("add refused on an open tee")
	}
	unix.FcntlInt(uintptr(fastW), unix.F_SETPIPE_SZ, 1<<20)
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	total := 0
	for range 8 { // 256 KiB: more than the slow client's 64 KiB pipe
		n, err := tee.Write(chunk)
		if err != nil || n != len(chunk) {
			t.Fatalf("Write: %d, %v", n, err)
		}
		total += n
	}
	if log.Len() != total {
		t.Errorf("log got %d bytes, want %d", log.Len(), total)
	}
	if tee.dropped == 0 {
		t.Errorf("nothing dropped for a client that reads nothing")
	}
	tee.Close()
	got, _ := io.ReadAll(fastR)
	if len(got) != total {
		t.Errorf("the reading client got %d bytes, want %d", len(got), total)
	}
	if !log.closed {
		t.Errorf("Close did not close the log stream")
	}
	if tee.add(-1) != nil {
		t.Errorf("add accepted a client after Close")
	}
}

// A client that closed its end is forgotten at the next write; remove of a
// client already gone does nothing.
func TestTeeForgetsGoneClient(t *testing.T) {
	tee := &tee{w: &bufCloser{}}
	r, w := clientPipe(t)
	c := tee.add(w)
	r.Close()
	tee.Write([]byte("hello"))
	if len(tee.clients) != 0 {
		t.Fatalf("%d clients after the only one left", len(tee.clients))
	}
	tee.remove(c)
	r2, w2 := clientPipe(t)
	c2 := tee.add(w2)
	tee.remove(c) // the old handle must not remove the new client
	if len(tee.clients) != 1 {
		t.Fatalf("remove of a gone client removed another")
	}
	tee.remove(c2)
	if got, _ := io.ReadAll(r2); len(got) != 0 {
		t.Errorf("removed client read %q", got)
	}
}
