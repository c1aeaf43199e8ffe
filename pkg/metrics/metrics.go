// Package metrics holds berthd's Prometheus metrics: their registry, the
// figures observed as things happen (RPCs, pulls, container starts) and the
// HTTP endpoint that serves them. It exists only when metrics.address is
// set; every method is a no-op on a nil *Metrics, so the code that observes
// needs no check and a disabled endpoint costs one nil comparison.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

// Namespace prefixes every berthd metric name.
const Namespace = "berth"

// Metrics is one registry and the metrics berthd observes itself. Figures
// read from records at scrape time (pods, containers, resources) come from
// collectors added with Register.
type Metrics struct {
	reg *prometheus.Registry

	rpcDuration  *prometheus.HistogramVec
	rpcErrors    *prometheus.CounterVec
	pullDuration *prometheus.HistogramVec
	startCost    prometheus.Histogram
}

// New makes a registry with berthd's metrics and, as client_golang offers
// them, the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "cri_rpc_duration_seconds",
			Help:      "Time berthd took to answer a CRI RPC, by method (for streams, the life of the stream), errors included.",
			// From an in-memory status answer (~100 µs) to a pull or a
			// pod start (seconds).
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"method"}),
		rpcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "cri_rpc_errors_total",
			Help:      "CRI RPCs answered with an error, by method and gRPC code.",
		}, []string{"method", "code"}),
		pullDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "image_pull_duration_seconds",
			Help:      "Time an image pull from a registry took (mirrors tried included), by outcome: success, or the kind of failure.",
			Buckets:   []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"outcome"}),
		startCost: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "container_create_to_running_seconds",
			Help:      "Time from a CreateContainer request being received to its StartContainer having the process running; includes any wait of the caller between the two calls.",
			Buckets:   []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rpcDuration, m.rpcErrors, m.pullDuration, m.startCost,
	)
	return m
}

// Register adds a collector that computes its figures at scrape time.
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(c)
}

// CountPulledBytes exposes the bytes received from registries, read from
// total (a running count kept by the image service) at scrape time.
func (m *Metrics) CountPulledBytes(total func() int64) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "image_pull_bytes_total",
		Help:      "Bytes received from registries by image pulls (manifests, configs and layers, as sent on the wire), failed pulls included.",
	}, func() float64 { return float64(total()) }))
}

// ObserveRPC records one CRI call: its duration, and its code when it
// failed.
func (m *Metrics) ObserveRPC(method string, d time.Duration, code codes.Code) {
	if m == nil {
		return
	}
	m.rpcDuration.WithLabelValues(method).Observe(d.Seconds())
	if code != codes.OK {
		m.rpcErrors.WithLabelValues(method, code.String()).Inc()
	}
}

// ObservePull records one pull from a registry and how it ended.
func (m *Metrics) ObservePull(d time.Duration, outcome string) {
	if m == nil {
		return
	}
	m.pullDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObserveContainerStart records the time from a container's creation
// request to its process running.
func (m *Metrics) ObserveContainerStart(d time.Duration) {
	if m == nil {
		return
	}
	m.startCost.Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text or protobuf format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Gatherer gives tests and other exporters the registry's figures.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }
