// Package testregistry is an OCI distribution (Docker registry v2) server on
// the loopback interface, filled with a fixed catalog of small images, for
// tests that pull images: no public registry is reachable where they run.
//
// The server is go-containerregistry's pkg/registry behind a thin front that
// adds optional basic or bearer-token authentication, request counters and
// an injectable stall. The images are built in memory once per process with
// fixed timestamps, sorted tar entries and fixed compression settings, so
// every digest is the same on every run and every machine that has the same
// busybox-static package.
package testregistry

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultAddr binds an ephemeral port on the IPv4 loopback address.
const DefaultAddr = "127.0.0.1:0"

// TokenService is the service name announced in bearer challenges.
const TokenService = "testregistry"

// Options configure Start.
type Options struct {
	// Addr is the address to listen on: "127.0.0.1:0" (the default) for an
	// ephemeral port, or e.g. "127.0.0.1:5000". Only loopback addresses
	// are accepted.
	Addr string
	// BasicAuth, when set, makes every request need these credentials as
	// HTTP basic authentication; others get 401 with
	// `WWW-Authenticate: Basic realm="testregistry"`.
	BasicAuth *Credentials
	// BearerAuth, when set, enables the Docker token flow: requests without
	// a valid token get 401 with `WWW-Authenticate: Bearer
	// realm="http://<addr>/token",service="testregistry"[,scope=...]`, and
	// /token exchanges these credentials (GET with basic auth, or the OAuth2
	// POST form with grant_type=password or refresh_token) for a token. It
	// takes precedence over BasicAuth.
	BearerAuth *Credentials
	// Images is the subset of catalog names to push; nil means all.
	Images []string
	// Logf, when set, receives one line per request.
	Logf func(format string, args ...any)
}

// Credentials are a username and password.
type Credentials struct{ Username, Password string }

// Registry is a running registry. Its methods are safe for concurrent use.
type Registry struct {
	opts  Options
	cat   *catalog
	addr  string
	ln    net.Listener
	srv   *http.Server
	inner http.Handler
	store *blobStore

	token        string
	refreshToken string

	delay          atomic.Int64 // time.Duration
	blobGets       atomic.Int64
	manifestGets   atomic.Int64
	tokenRequests  atomic.Int64
	mu             sync.Mutex
	blobGetsByHash map[string]int64

	// gate is read-held by every running handler; Close takes it for
	// writing so that no handler logs through Logf (often a testing.T's)
	// after Close returns.
	gate      sync.RWMutex
	closed    bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Start builds the catalog (once per process), starts serving and pushes the
// selected images. The registry serves until Close.
func Start(opts Options) (*Registry, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if err := checkLoopback(opts.Addr); err != nil {
		return nil, err
	}
	cat, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	names := opts.Images
	if names == nil {
		names = Names()
	}
	for _, n := range names {
		if _, ok := cat.entries[n]; !ok {
			return nil, fmt.Errorf("testregistry: no image %q in the catalog (have %v)", n, Names())
		}
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("testregistry: listen on %s: %w", opts.Addr, err)
	}
	r := &Registry{
		opts:           opts,
		cat:            cat,
		addr:           ln.Addr().String(),
		ln:             ln,
		token:          randomHex(),
		refreshToken:   randomHex(),
		blobGetsByHash: map[string]int64{},
		done:           make(chan struct{}),
	}
	r.store = &blobStore{shared: cat.blobs, local: map[string][]byte{}}
	r.inner = ggcrregistry.New(
		ggcrregistry.Logger(log.New(io.Discard, "", 0)),
		ggcrregistry.WithBlobHandler(r.store),
	)
	r.srv = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = r.srv.Serve(ln) }()

	for _, n := range names {
		e := cat.entries[n]
		if err := r.push(e, e.info.Repo, e.info.Tag); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("testregistry: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("testregistry: address %q is not a loopback address", addr)
}

func randomHex() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Addr returns the host:port the registry listens on.
func (r *Registry) Addr() string { return r.addr }

// URL returns "http://" + Addr().
func (r *Registry) URL() string { return "http://" + r.addr }

// Close stops the server, aborting stalled responses and open connections,
// and returns once no request handler is running.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.closeErr = r.srv.Close()
		r.gate.Lock()
		r.closed = true
		r.gate.Unlock()
	})
	return r.closeErr
}

// Image returns the info of catalog image name as built (whether or not it
// was pushed to this registry). It panics on a name that is not in the
// catalog: that is a mistake in the calling test, not a runtime condition.
func (r *Registry) Image(name string) ImageInfo {
	e, ok := r.cat.entries[name]
	if !ok {
		panic(fmt.Sprintf("testregistry: no image %q in the catalog (have %v)", name, Names()))
	}
	return e.info.clone()
}

// Ref returns "<addr>/<repo>:<tag>" for catalog image name.
func (r *Registry) Ref(name string) string {
	i := r.Image(name)
	return r.addr + "/" + i.Repo + ":" + i.Tag
}

// DigestRef returns "<addr>/<repo>@<manifest digest>" for catalog image name.
func (r *Registry) DigestRef(name string) string {
	i := r.Image(name)
	return r.addr + "/" + i.Repo + "@" + i.ManifestDigest
}

// PushAs pushes catalog image name under repo:tag, moving the tag if it
// exists (e.g. PushAs("other", "library/busybox", "latest") makes "busybox"
// resolve to a different image). Blobs are shared, so only manifests move.
func (r *Registry) PushAs(name, repo, tag string) error {
	e, ok := r.cat.entries[name]
	if !ok {
		return fmt.Errorf("testregistry: no image %q in the catalog (have %v)", name, Names())
	}
	return r.push(e, repo, tag)
}

// push writes an image or index with go-containerregistry's client. It talks
// to the wrapped handler in-process, past the authentication front, so
// pushing works the same whatever Options say and is not counted.
func (r *Registry) push(e *entry, repo, tag string) error {
	ref, err := name.NewTag(r.addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return fmt.Errorf("testregistry: push %s: %w", e.info.Name, err)
	}
	opts := []remote.Option{
		remote.WithTransport(handlerTransport{r.inner}),
		remote.WithAuth(authn.Anonymous),
	}
	if e.idx != nil {
		err = remote.WriteIndex(ref, e.idx, opts...)
	} else {
		err = remote.Write(ref, e.img, opts...)
	}
	if err != nil {
		return fmt.Errorf("testregistry: push %s as %s: %w", e.info.Name, ref, err)
	}
	return nil
}

// Requests returns the number of blob GET requests answered with success
// since Start (or the last ResetCounters): tests use it to check that a blob
// already stored is not fetched again.
func (r *Registry) Requests() int64 { return r.blobGets.Load() }

// BlobRequests returns how many successful GETs blob digest got.
func (r *Registry) BlobRequests(digest string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGetsByHash[digest]
}

// ManifestRequests returns the number of successful manifest GETs.
func (r *Registry) ManifestRequests() int64 { return r.manifestGets.Load() }

// TokenRequests returns the number of tokens issued by /token.
func (r *Registry) TokenRequests() int64 { return r.tokenRequests.Load() }

// ResetCounters zeroes every request counter.
func (r *Registry) ResetCounters() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobGets.Store(0)
	r.manifestGets.Store(0)
	r.tokenRequests.Store(0)
	r.blobGetsByHash = map[string]int64{}
}

// SetDelay makes blob GETs that start afterwards send their headers and the
// first part of the body (half of it, at most 32 KiB) and then send nothing
// for d, so that a test can kill a puller mid-transfer or exercise a
// no-progress timeout. Zero turns the stall off.
func (r *Registry) SetDelay(d time.Duration) { r.delay.Store(int64(d)) }

// stallChunk caps how much of a blob is sent before a stall.
const stallChunk = 32 << 10

// ServeHTTP is the front of the registry: authentication, counters and
// stalls, then go-containerregistry's handler.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.gate.RLock()
	defer r.gate.RUnlock()
	if r.closed {
		http.Error(w, "testregistry: closed", http.StatusServiceUnavailable)
		return
	}
	start := time.Now()
	rw := &respWriter{ResponseWriter: w}
	if r.opts.Logf != nil {
		defer func() {
			r.opts.Logf("testregistry: %s %s -> %d (%d bytes, %s)", req.Method, req.URL.RequestURI(),
				rw.statusOrOK(), rw.written, time.Since(start).Round(time.Millisecond))
		}()
	}

	if req.URL.Path == "/token" && r.opts.BearerAuth != nil {
		r.serveToken(rw, req)
		return
	}
	repo, kind, rest := splitV2Path(req.URL.Path)
	if !r.authorize(rw, req, repo) {
		return
	}
	if req.Method == http.MethodGet {
		switch {
		case kind == "blobs" && strings.HasPrefix(rest, "sha256:"):
			digest := rest
			rw.onSuccess = func() {
				r.blobGets.Add(1)
				r.mu.Lock()
				r.blobGetsByHash[digest]++
				r.mu.Unlock()
			}
			if d := time.Duration(r.delay.Load()); d > 0 {
				rw.stallFor = d
				rw.ctx = req.Context()
				rw.done = r.done
			}
			// Blobs are served here rather than by the wrapped handler,
			// whose Range support lacks the open-ended "bytes=N-" form
			// that a puller resuming a download sends.
			if h, err := v1.NewHash(digest); err == nil {
				if b, ok := r.store.find(h); ok {
					rw.Header().Set("Docker-Content-Digest", digest)
					rw.Header().Set("Content-Type", "application/octet-stream")
					http.ServeContent(rw, req, "", time.Time{}, bytes.NewReader(b))
					return
				}
			}
		case kind == "manifests":
			rw.onSuccess = func() { r.manifestGets.Add(1) }
		}
	}
	r.inner.ServeHTTP(rw, req)
}

// splitV2Path splits /v2/<repo>/<kind>/<rest> where kind is blobs,
// manifests, tags or referrers. repo is "" for other paths.
func splitV2Path(p string) (repo, kind, rest string) {
	if !strings.HasPrefix(p, "/v2/") {
		return "", "", ""
	}
	p = strings.TrimPrefix(p, "/v2/")
	for _, k := range []string{"blobs", "manifests", "tags", "referrers"} {
		if i := strings.LastIndex(p, "/"+k+"/"); i > 0 {
			// blobs/uploads/<id> contains no later "/blobs/", so LastIndex
			// finds the separator after the repository name.
			return p[:i], k, p[i+len(k)+2:]
		}
	}
	return "", "", ""
}

func (r *Registry) authorize(w http.ResponseWriter, req *http.Request, repo string) bool {
	switch {
	case r.opts.BearerAuth != nil:
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && equal(tok, r.token) {
			return true
		}
		host := req.Host
		if host == "" {
			host = r.addr
		}
		challenge := fmt.Sprintf(`Bearer realm="http://%s/token",service=%q`, host, TokenService)
		if repo != "" {
			action := "pull"
			if req.Method != http.MethodGet && req.Method != http.MethodHead {
				action = "pull,push"
			}
			challenge += fmt.Sprintf(`,scope="repository:%s:%s"`, repo, action)
		}
		unauthorized(w, challenge)
		return false
	case r.opts.BasicAuth != nil:
		if u, p, ok := req.BasicAuth(); ok && r.opts.BasicAuth.match(u, p) {
			return true
		}
		unauthorized(w, `Basic realm="testregistry"`)
		return false
	}
	return true
}

func (c *Credentials) match(user, pass string) bool {
	return equal(user, c.Username) && equal(pass, c.Password)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func unauthorized(w http.ResponseWriter, challenge string) {
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	writeJSON(w, http.StatusUnauthorized, map[string]any{
		"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": "authentication required"}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveToken is the token endpoint of the Docker token flow. GET takes the
// credentials as basic auth (what docker and go-containerregistry do); POST
// takes the OAuth2 form (what containerd tries first).
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	creds := r.opts.BearerAuth
	ok := false
	refresh := false
	switch req.Method {
	case http.MethodGet:
		u, p, has := req.BasicAuth()
		ok = has && creds.match(u, p)
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
			return
		}
		switch req.PostForm.Get("grant_type") {
		case "password":
			ok = creds.match(req.PostForm.Get("username"), req.PostForm.Get("password"))
			refresh = true
		case "refresh_token":
			ok = equal(req.PostForm.Get("refresh_token"), r.refreshToken)
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		return
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="testregistry token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": "bad credentials"}},
		})
		return
	}
	r.tokenRequests.Add(1)
	resp := map[string]any{
		"token":        r.token,
		"access_token": r.token,
		"expires_in":   3600,
		"issued_at":    time.Now().UTC().Format(time.RFC3339),
	}
	if refresh {
		resp["refresh_token"] = r.refreshToken
	}
	writeJSON(w, http.StatusOK, resp)
}

// respWriter records the status and size of a response, runs onSuccess when
// a 2xx status is sent, and optionally stalls the body part way.
type respWriter struct {
	http.ResponseWriter
	status    int
	written   int64
	onSuccess func()

	stallFor   time.Duration
	stallAfter int64
	stalled    bool
	ctx        context.Context
	done       <-chan struct{}
}

func (w *respWriter) statusOrOK() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *respWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code >= 200 && code < 300 && w.onSuccess != nil {
		w.onSuccess()
	}
	if w.stallFor > 0 {
		w.stallAfter = stallChunk
		if n, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil && n/2 < w.stallAfter {
			w.stallAfter = n / 2
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.stallFor <= 0 || w.stalled || w.written+int64(len(p)) <= w.stallAfter || w.status >= 300 {
		n, err := w.ResponseWriter.Write(p)
		w.written += int64(n)
		return n, err
	}
	head := w.stallAfter - w.written
	n, err := w.ResponseWriter.Write(p[:head])
	w.written += int64(n)
	if err != nil {
		return n, err
	}
	w.Flush()
	w.stalled = true
	t := time.NewTimer(w.stallFor)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.ctx.Done():
		return n, w.ctx.Err()
	case <-w.done:
		return n, errors.New("testregistry: closed")
	}
	m, err := w.ResponseWriter.Write(p[head:])
	w.written += int64(m)
	return n + m, err
}

func (w *respWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handlerTransport is an http.RoundTripper that serves requests with an
// http.Handler in-process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sreq := req.Clone(req.Context())
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "127.0.0.1:0"
	if sreq.Host == "" {
		sreq.Host = req.URL.Host
	}
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sreq)
	if req.Body != nil {
		req.Body.Close()
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// blobStore serves the catalog's blobs from the shared, read-only map built
// once per process, and keeps anything else pushed to this registry apart.
type blobStore struct {
	shared map[string][]byte
	mu     sync.Mutex
	local  map[string][]byte
}

type bytesReadCloser struct{ *bytes.Reader }

func (bytesReadCloser) Close() error { return nil }

func (s *blobStore) find(h v1.Hash) ([]byte, bool) {
	if b, ok := s.shared[h.String()]; ok {
		return b, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.local[h.String()]
	return b, ok
}

func (s *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	b, ok := s.find(h)
	if !ok {
		return 0, ggcrregistry.ErrNotFound
	}
	return int64(len(b)), nil
}

// Get returns a reader that is also an io.ReaderAt, which lets the wrapped
// handler answer Range requests (resumed pulls) without copying.
func (s *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	b, ok := s.find(h)
	if !ok {
		return nil, ggcrregistry.ErrNotFound
	}
	return bytesReadCloser{bytes.NewReader(b)}, nil
}

func (s *blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	if _, ok := s.shared[h.String()]; ok {
		_, err := io.Copy(io.Discard, rc)
		return err
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local[h.String()] = b
	return nil
}
