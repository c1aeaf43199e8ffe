// Package server serves the CRI RuntimeService and ImageService over gRPC.
// Each RPC lives in its own file; every call passes through one wrapper
// (instrument.go) for validation, logging, panic recovery and error codes.
package server

import (
	"sync"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/pkg/config"
)

// Server implements the CRI services. RPCs not built yet are answered by
// the embedded Unimplemented servers with codes.Unimplemented.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	images *images.Service
	log    *logrus.Entry

	cfgMu sync.RWMutex
	cfg   config.Config
}

// New creates the CRI server over an image service.
func New(cfg config.Config, img *images.Service, log *logrus.Entry) *Server {
	return &Server{images: img, log: log, cfg: cfg}
}

// Register adds the CRI services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

// SetConfig replaces the config used by RPCs that read it (on reload).
func (s *Server) SetConfig(cfg config.Config) {
	s.cfgMu.Lock()
	s.cfg = cfg
	s.cfgMu.Unlock()
}

func (s *Server) config() config.Config {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.cfg
}
