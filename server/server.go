// Package server serves the CRI RuntimeService and ImageService over gRPC.
// Each RPC lives in its own file; every call passes through one wrapper
// (instrument.go) for validation, logging, panic recovery and error codes.
package server

import (
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/oci/host"
	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/pkg/config"
	"github.com/berth-runtime/berth/pkg/hostport"
	"github.com/berth-runtime/berth/pkg/metrics"
	"github.com/berth-runtime/berth/pkg/network"
	"github.com/berth-runtime/berth/server/store"
)

// defaultHandler is the runtime handler name berthd answers to besides "".
const defaultHandler = "berth"

// Deps are the parts the CRI server drives.
type Deps struct {
	Images   *images.Service
	Store    *store.Store
	Network  *network.Manager
	Facts    host.Facts
	ShimPath string
	// RuntimePath is the built-in handler's runtime binary (berth-runtime).
	RuntimePath string
	// PIDHolderPath is the binary that holds a pod's shared PID namespace
	// (berth-pidns-holder).
	PIDHolderPath string
	Metrics       *metrics.Metrics // nil when metrics are off
}

// Server implements the CRI services. RPCs not built yet are answered by
// the embedded Unimplemented servers with codes.Unimplemented.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg      config.Config // as at start; what reloads live is held elsewhere
	images   *images.Service
	store    *store.Store
	net      *network.Manager
	facts    host.Facts
	shimPath string
	// runtimePath is the binary the monitor of a pod of the built-in
	// handler runs its containers with.
	runtimePath   string
	pidHolderPath string // see Deps
	log           *logrus.Entry

	podLocks keyedLocks
	ctrLocks keyedLocks

	shimsMu sync.Mutex
	shims   map[string]*shim.Client // by pod ID

	holdsMu sync.Mutex
	holds   map[string]func() // by container ID: releases its image layers

	stats *statsCollector // samples usage for the stats RPCs; stopped by Close
	ports *hostport.Proxy // pods' host ports on 127.0.0.1

	events  eventBroker  // container events for GetContainerEvents
	podCIDR atomic.Value // string: the node's pod CIDR, from UpdateRuntimeConfig

	stream *streamService // Exec, Attach and PortForward URLs (streaming.go)

	metrics *metrics.Metrics // nil when off; see metrics_prom.go
}

// New creates the CRI server.
func New(cfg config.Config, d Deps, log *logrus.Entry) *Server {
	s := &Server{
		cfg:           cfg,
		images:        d.Images,
		store:         d.Store,
		net:           d.Network,
		facts:         d.Facts,
		shimPath:      d.ShimPath,
		runtimePath:   d.RuntimePath,
		pidHolderPath: d.PIDHolderPath,
		log:           log,
		shims:         map[string]*shim.Client{},
		holds:         map[string]func(){},
		ports:         hostport.New(log),
	}
	s.metrics = d.Metrics
	s.stats = newStatsCollector(s)
	go s.stats.run()
	return s
}

// Register adds the CRI services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

func (s *Server) holdContainer(id string, release func()) {
	s.holdsMu.Lock()
	s.holds[id] = release
	s.holdsMu.Unlock()
}

// releaseContainer lets the container's image layers go; the image store
// deletes them if no image uses them any more.
func (s *Server) releaseContainer(id string, layers []string) {
	s.holdsMu.Lock()
	release := s.holds[id]
	delete(s.holds, id)
	s.holdsMu.Unlock()
	if release != nil {
		s.images.Release(release, layers...)
	}
}
