package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/server/store"
)

// RunPodSandbox creates a pod: its namespaces (pinned, no infra process),
// network, files, /dev/shm and monitor. Whatever fails, nothing it made is
// left behind.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if err := s.checkHandler(req.GetRuntimeHandler(), cfg); err != nil {
		return nil, err
	}
	pb, err := proto.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	id := newID()
	pod := &store.Pod{
		ID:        id,
		Name:      fmt.Sprintf("%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt()),
		Phase:     store.PodCreating,
		CreatedAt: time.Now(),
		ConfigPB:  pb,
		Handler:   req.GetRuntimeHandler(),
		Dir:       filepath.Join(s.cfg.StateDir, "pods", id),
		ShimDir:   filepath.Join(s.cfg.StateDir, "shims", id),
	}
	defer s.podLocks.lock(id)()
	// The record comes first: if berthd dies half-way, the next start finds
	// a pod still "creating" and tears down whatever exists of it.
	if err := s.store.ReservePod(pod); err != nil {
		return nil, status.Error(codes.AlreadyExists, err.Error())
	}
	var u undo
	ok := false
	defer func() {
		if !ok {
			u.run(s.log.WithField("pod", id))
			if err := s.store.DeletePod(id); err != nil {
				s.log.WithError(err).Warnf("forgetting failed pod %s", id)
			}
		}
	}()
	u.add("pod directory", func() error { return os.RemoveAll(pod.Dir) })
	if err := os.MkdirAll(pod.Dir, 0o711); err != nil {
		return nil, err
	}
	ready, err := s.setupPod(ctx, pod, cfg, &u)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.UpdatePod(id, func(p *store.Pod) error { *p = *ready; p.Phase = store.PodReady; return nil }); err != nil {
		return nil, err
	}
	ok = true
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// checkHandler accepts the built-in runtime handler and the configured
// ones (runtime.handlers), and refuses what a handler cannot do: an
// external runtime binary is not given the pod's user namespace (berth
// makes it, with idmapped mounts, for libcontainer only).
func (s *Server) checkHandler(name string, cfg *runtimeapi.PodSandboxConfig) error {
	if name == "" || name == defaultHandler {
		return nil
	}
	if _, ok := s.cfg.Runtime.Handlers[name]; !ok {
		known := append([]string{`""`, defaultHandler}, s.handlerNames()...)
		return invalid("runtime_handler", "unknown runtime handler %q (known: %s)", name, strings.Join(known, ", "))
	}
	if spec.PodUserNamespace(cfg) != nil {
		return invalid("config.linux.security_context.namespace_options.userns_options", "runtime handler %q does not support user namespaces (mode POD); use the built-in handler", name)
	}
	return nil
}
