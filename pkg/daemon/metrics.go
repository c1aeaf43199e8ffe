package daemon

import (
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/pkg/config"
	"github.com/berth-runtime/berth/pkg/metrics"
	"github.com/berth-runtime/berth/server"
)

// newMetrics makes the metrics registry and hooks the image service to it,
// or returns nil when metrics.address is empty: then nothing is allocated
// for metrics, no goroutine runs and nothing listens.
func newMetrics(cfg config.Config, imgs *images.Service) (*metrics.Metrics, error) {
	if cfg.Metrics.Address == "" {
		return nil, nil
	}
	m := metrics.New()
	imgs.ObservePulls(m.ObservePull)
	if err := m.CountPulledBytes(imgs.PulledBytes); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// serveMetrics adds the CRI server's record-based figures and starts the
// HTTP endpoint; nil when metrics are off.
func serveMetrics(cfg config.Config, m *metrics.Metrics, cri *server.Server, log *logrus.Entry) (*metrics.Endpoint, error) {
	if m == nil {
		return nil, nil
	}
	if err := m.Register(cri.PromCollector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	ep, err := metrics.Listen(cfg.Metrics.Address, m.Handler(), log)
	if err != nil {
		return nil, err
	}
	log.Infof("serving metrics on http://%s%s", ep.Addr(), metrics.Path)
	return ep, nil
}
