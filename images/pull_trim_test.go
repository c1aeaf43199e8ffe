package images

import (
	"testing"
	"time"
)

// Memory is handed back once, when the last of overlapping pulls ends.
func TestPullDoneFreesMemoryAfterTheLastPull(t *testing.T) {
	calls := make(chan struct{}, 4)
	saved := freeOSMemory
	freeOSMemory = func() { calls <- struct{}{} }
	defer func() { freeOSMemory = saved }()

	s := &Service{}
	s.pulling.Add(2) // two pulls at once
	s.pullDone()
	select {
	case <-calls:
		t.Fatal("memory freed while a pull is still in progress")
	case <-time.After(50 * time.Millisecond):
	}
	s.pullDone()
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("memory not freed after the last pull")
	}
	if n := s.pulling.Load(); n != 0 {
		t.Fatalf("pulls in progress = %d, want 0", n)
	}
}
