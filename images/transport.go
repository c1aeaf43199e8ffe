package images

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newBaseTransport is the HTTP transport for one registry host. Header
// waits are bounded by the progress timeout so a registry that accepts a
// connection and then says nothing cannot hang a pull.
func newBaseTransport(insecure bool, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // only for registries configured insecure
	}
}

// guardTransport keeps a pull on the addresses the registry config allows:
// the chosen host, token realms that host names in its challenges, and
// redirects the host itself sends. It refuses anything else, such as a
// foreign layer URL written into a manifest.
type guardTransport struct {
	host string
	next http.RoundTripper

	mu     sync.Mutex
	realms map[string]bool
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := req.URL.Host
	if h != g.host && req.Response == nil && !g.isRealm(h) {
		return nil, fmt.Errorf("refusing to contact %s: only %s is configured for this registry", h, g.host)
	}
	resp, err := g.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && h == g.host {
		for _, c := range resp.Header.Values("WWW-Authenticate") {
			if r := realmHost(c); r != "" {
				g.mu.Lock()
				if g.realms == nil {
					g.realms = map[string]bool{}
				}
				g.realms[r] = true
				g.mu.Unlock()
			}
		}
	}
	return resp, err
}

func (g *guardTransport) isRealm(h string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.realms[h]
}

// realmHost extracts the host of realm="https://auth.example/token".
func realmHost(challenge string) string {
	i := strings.Index(challenge, `realm="`)
	if i < 0 {
		return ""
	}
	rest := challenge[i+len(`realm="`):]
	rest = rest[:max(strings.IndexByte(rest, '"'), 0)]
	rest = strings.TrimPrefix(strings.TrimPrefix(rest, "https://"), "http://")
	return strings.SplitN(rest, "/", 2)[0]
}

// progressTransport fails a response body that yields no bytes for the
// timeout. The idle timer restarts on every read, so slow but moving
// downloads continue while a stalled one ends with ErrNoProgress.
type progressTransport struct {
	timeout time.Duration
	next    http.RoundTripper
	bytes   *atomic.Int64 // counts body bytes for metrics; may be nil
}

func (p *progressTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = newIdleReader(resp.Body, p.timeout, p.bytes)
	return resp, nil
}

type idleReader struct {
	body    io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	count   *atomic.Int64
}

func newIdleReader(body io.ReadCloser, timeout time.Duration, count *atomic.Int64) *idleReader {
	r := &idleReader{body: body, timeout: timeout, count: count}
	r.timer = time.AfterFunc(timeout, func() {
		r.stalled.Store(true)
		body.Close() // unblocks a Read waiting on the network
	})
	return r
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if n > 0 {
		r.timer.Reset(r.timeout)
		if r.count != nil {
			r.count.Add(int64(n))
		}
	}
	if err != nil && r.stalled.Load() {
		return n, errorf(ErrNoProgress, "no data received for %s", r.timeout)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	return r.body.Close()
}
