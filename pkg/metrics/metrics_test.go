package metrics

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
)

// A nil *Metrics is what the daemon has with metrics off: every hook must
// accept it.
func TestNilMetricsIsNoop(t *testing.T) {
	var m *Metrics
	m.ObserveRPC("Version", time.Millisecond, codes.Internal)
	m.ObservePull(time.Second, "success")
	m.ObserveContainerStart(time.Second)
	if err := m.Register(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.CountPulledBytes(func() int64 { return 1 }); err != nil {
		t.Fatal(err)
	}
}

func TestObserveRPC(t *testing.T) {
	m := New()
	m.ObserveRPC("RunPodSandbox", 30*time.Millisecond, codes.OK)
	m.ObserveRPC("RunPodSandbox", 2*time.Second, codes.Internal)
	m.ObserveRPC("ContainerStatus", time.Millisecond, codes.NotFound)
	m.ObserveRPC("ContainerStatus", time.Millisecond, codes.NotFound)

	want := `
# HELP berth_cri_rpc_errors_total CRI RPCs answered with an error, by method and gRPC code.
# TYPE berth_cri_rpc_errors_total counter
berth_cri_rpc_errors_total{code="Internal",method="RunPodSandbox"} 1
berth_cri_rpc_errors_total{code="NotFound",method="ContainerStatus"} 2
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "berth_cri_rpc_errors_total"); err != nil {
		t.Fatal(err)
	}
	// Successes and failures both count in the latency histogram.
	out := scrapeText(t, m)
	for _, line := range []string{
		`berth_cri_rpc_duration_seconds_count{method="RunPodSandbox"} 2`,
		`berth_cri_rpc_duration_seconds_bucket{method="RunPodSandbox",le="0.05"} 1`,
		`berth_cri_rpc_duration_seconds_bucket{method="RunPodSandbox",le="2.5"} 2`,
		`berth_cri_rpc_duration_seconds_count{method="ContainerStatus"} 2`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %q", line)
		}
	}
}

func TestPullAndStartFigures(t *testing.T) {
	m := New()
	var bytes int64 = 1234
	if err := m.CountPulledBytes(func() int64 { return bytes }); err != nil {
		t.Fatal(err)
	}
	m.ObservePull(3*time.Second, "success")
	m.ObservePull(time.Second, "not_found")
	m.ObserveContainerStart(80 * time.Millisecond)
	bytes = 5678 // read at scrape time, not at registration
	out := scrapeText(t, m)
	for _, line := range []string{
		`berth_image_pull_bytes_total 5678`,
		`berth_image_pull_duration_seconds_count{outcome="success"} 1`,
		`berth_image_pull_duration_seconds_sum{outcome="success"} 3`,
		`berth_image_pull_duration_seconds_count{outcome="not_found"} 1`,
		`berth_container_create_to_running_seconds_count 1`,
		`berth_container_create_to_running_seconds_bucket{le="0.05"} 0`,
		`berth_container_create_to_running_seconds_bucket{le="0.1"} 1`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %q", line)
		}
	}
	// client_golang's own collectors are there too.
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("missing %s", name)
		}
	}
	if problems, err := testutil.GatherAndLint(m.Gatherer()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

func TestEndpoint(t *testing.T) {
	m := New()
	m.ObserveRPC("Version", time.Millisecond, codes.OK)
	log := logrus.NewEntry(logrus.New())
	ep, err := Listen("127.0.0.1:0", m.Handler(), log)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ep.Addr().String()
	body, code := get(t, base+Path)
	if code != http.StatusOK || !strings.Contains(body, `berth_cri_rpc_duration_seconds_count{method="Version"} 1`) {
		t.Fatalf("GET %s: %d\n%s", Path, code, body)
	}
	if _, code := get(t, base+"/"); code != http.StatusNotFound {
		t.Fatalf("GET /: %d, want 404", code)
	}

	// A second endpoint on a taken address fails at once, naming the key.
	if _, err := Listen(ep.Addr().String(), m.Handler(), log); err == nil || !strings.Contains(err.Error(), "metrics.address") {
		t.Fatalf("second listen on %s: %v", ep.Addr(), err)
	}

	// An idle keep-alive connection must not hold Close up.
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", ep.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("still listening after Close")
	}
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

func scrapeText(t *testing.T, m *Metrics) string {
	t.Helper()
	ep, err := Listen("127.0.0.1:0", m.Handler(), logrus.NewEntry(logrus.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	body, code := get(t, "http://"+ep.Addr().String()+Path)
	if code != http.StatusOK {
		t.Fatalf("scrape: %d", code)
	}
	return body
}
