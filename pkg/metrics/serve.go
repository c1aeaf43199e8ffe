package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
)

// Path is where the endpoint answers; other paths are 404.
const Path = "/metrics"

// Endpoint is the HTTP server of /metrics.
type Endpoint struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// Listen binds addr (host:port) at once, so that a taken or bad address
// stops berthd at start, and serves h on Path until Close.
func Listen(addr string, h http.Handler, log *logrus.Entry) (*Endpoint, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	e := &Endpoint{
		srv: &http.Server{
			Handler: mux,
			// A scraper that opens a connection and sends nothing must
			// not hold it forever.
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		addr: lis.Addr(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(e.done)
		if err := e.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("metrics endpoint stopped")
		}
	}()
	return e, nil
}

// Addr is the address the endpoint listens on (with the port chosen when
// the configured one was 0).
func (e *Endpoint) Addr() net.Addr { return e.addr }

// Close lets scrapes in flight finish for a moment, then closes every
// connection and waits for the server to end.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if err != nil {
		err = e.srv.Close()
	}
	<-e.done
	return err
}
