package images

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestIdleReaderFailsStalledBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	rt := &progressTransport{timeout: 200 * time.Millisecond, next: http.DefaultTransport}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrNoProgress) {
		t.Fatalf("want ErrNoProgress, got %v (data %q)", err, data)
	}
	if string(data) != "hello" {
		t.Fatalf("data before the stall lost: %q", data)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stall noticed after %s", d)
	}
}

func TestGuardTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://auth.invalid:9/token",service="x"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := srv.Listener.Addr().String()
	g := &guardTransport{host: host, next: http.DefaultTransport}
	other, _ := http.NewRequest("GET", "http://other.invalid/v2/", nil)
	if _, err := g.RoundTrip(other); err == nil {
		t.Fatal("contacted a host that is not configured")
	}
	own, _ := http.NewRequest("GET", "http://"+host+"/v2/", nil)
	resp, err := g.RoundTrip(own)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !g.isRealm("auth.invalid:9") {
		t.Fatal("token realm from the challenge not allowed")
	}
}
