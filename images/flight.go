package images

import (
	"context"
	"sync"
)

// flightGroup runs one call per key for all callers that ask at once, like
// singleflight, but the work is not tied to the first caller's context: it
// runs until every caller has gone, so one client giving up (kubelet's
// deadline, ^C on crictl) does not fail the others sharing the download.
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done    chan struct{}
	val     any
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Do runs fn once for key among concurrent callers and returns its result.
// A caller whose ctx ends gets ctx.Err(); the work is cancelled only when
// no caller waits for it any more.
func (g *flightGroup) Do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flightCall{}
	}
	c, ok := g.calls[key]
	if !ok {
		// Values (logging fields, deadlines of none) carry over; the
		// caller's cancellation does not.
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &flightCall{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go func() {
			c.val, c.err = fn(wctx)
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			cancel()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		last := c.waiters == 0
		if last {
			c.cancel()
			// A caller arriving now starts afresh rather than joining
			// work that is being cancelled.
			if g.calls[key] == c {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		if last {
			// The last caller waits for the cancelled work to clean up, so
			// nothing it started is still running when its RPC returns.
			<-c.done
		}
		return nil, ctx.Err()
	}
}
