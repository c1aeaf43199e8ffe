package images

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestFlightSharesAndSurvivesOneCancel(t *testing.T) {
	var g flightGroup
	var runs atomic.Int32
	release := make(chan struct{})
	fn := func(ctx context.Context) (any, error) {
		runs.Add(1)
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	res1 := make(chan error, 1)
	go func() { _, err := g.Do(ctx1, "k", fn); res1 <- err }()
	res2 := make(chan any, 1)
	time.Sleep(20 * time.Millisecond)
	go func() { v, _ := g.Do(context.Background(), "k", fn); res2 <- v }()
	time.Sleep(20 * time.Millisecond)
	cancel1()
	if err := <-res1; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v", err)
	}
	close(release)
	if v := <-res2; v != "done" {
		t.Fatalf("other caller got %v", v)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("work ran %d times", n)
	}
}

func TestFlightCancelledWhenAllLeave(t *testing.T) {
	var g flightGroup
	stopped := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go g.Do(ctx, "k", func(ctx context.Context) (any, error) {
		<-ctx.Done()
		close(stopped)
		return nil, ctx.Err()
	})
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("work went on with no caller left")
	}
	// A new caller starts new work.
	v, err := g.Do(context.Background(), "k", func(context.Context) (any, error) { return 1, nil })
	if err != nil || v != 1 {
		t.Fatalf("fresh call: %v %v", v, err)
	}
}
