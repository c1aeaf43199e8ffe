package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// server holds the pod's containers and implements the RPCs.
type server struct {
	pod    string
	dir    string
	rt     ociRuntime // creates the pod's containers
	reaper *reaper

	mu         sync.Mutex
	containers map[string]*container
	closing    bool
}

func newServer(pod, dir string, r *reaper, rt ociRuntime) *server {
	return &server{
		pod:        pod,
		dir:        dir,
		rt:         rt,
		reaper:     r,
		containers: map[string]*container{},
	}
}

func (s *server) methods() map[string]handler {
	return map[string]handler{
		api.MethodInfo:      method(s.Info),
		api.MethodCreate:    method(s.Create),
		api.MethodStart:     method(s.Start),
		api.MethodSignal:    method(s.Signal),
		api.MethodState:     method(s.State),
		api.MethodList:      method(s.List),
		api.MethodWait:      method(s.Wait),
		api.MethodDelete:    method(s.Delete),
		api.MethodExecSync:  method(s.ExecSync),
		api.MethodReopenLog: method(s.ReopenLog),
		api.MethodShutdown:  method(s.Shutdown),
		api.MethodUpdate:    method(s.Update),
	}
}

// get returns a container that finished Create.
func (s *server) get(id string) (*container, error) {
	if err := api.ValidateID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c := s.containers[id]
	s.mu.Unlock()
	if c == nil || c.state().Status == "" {
		return nil, api.Errorf(api.ErrNotFound, "container "+id)
	}
	return c, nil
}

func (s *server) Info(*api.Empty) (*api.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fds, _ := os.ReadDir("/proc/self/fd") // counts its own descriptor too
	return &api.Info{PodID: s.pod, Pid: os.Getpid(), Containers: len(s.containers),
		Goroutines: runtime.NumGoroutine(), Fds: len(fds) - 1}, nil
}

func (s *server) Create(req *api.CreateRequest) (*api.CreateResponse, error) {
	if err := api.ValidateID(req.ID); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(req.Bundle) {
		return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("bundle: %q is not an absolute path", req.Bundle))
	}
	if req.LogPath != "" && !filepath.IsAbs(req.LogPath) {
		return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("log_path: %q is not an absolute path", req.LogPath))
	}
	c := &container{id: req.ID, shim: s, exited: make(chan struct{})}
	c.op.Lock()
	defer c.op.Unlock()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, api.Errorf(api.ErrFailedPrecondition, "the shim is shutting down")
	}
	if s.containers[req.ID] != nil {
		s.mu.Unlock()
		return nil, api.Errorf(api.ErrExists, "container "+req.ID)
	}
	s.containers[req.ID] = c
	s.mu.Unlock()
	if err := c.create(req); err != nil {
		s.mu.Lock()
		delete(s.containers, req.ID)
		s.mu.Unlock()
		log.Printf("create %s: %v", req.ID, err)
		return nil, err
	}
	st := c.state()
	log.Printf("container %s created, pid %d", req.ID, st.Pid)
	return &api.CreateResponse{Pid: st.Pid}, nil
}

func (s *server) Start(req *api.IDRequest) (*api.Empty, error) {
	c, err := s.get(req.ID)
	if err != nil {
		return nil, err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.deleted {
		return nil, api.Errorf(api.ErrNotFound, "container "+req.ID)
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	return &api.Empty{}, nil
}

func (s *server) Signal(req *api.SignalRequest) (*api.Empty, error) {
	c, err := s.get(req.ID)
	if err != nil {
		return nil, err
	}
	if req.Signal <= 0 || req.Signal > 64 {
		return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("signal: %d is not a signal number (1-64)", req.Signal))
	}
	if err := c.signal(unix.Signal(req.Signal), req.All); err != nil {
		return nil, err
	}
	return &api.Empty{}, nil
}

func (s *server) State(req *api.IDRequest) (*api.ContainerState, error) {
	c, err := s.get(req.ID)
	if err != nil {
		return nil, err
	}
	st := c.state()
	return &st, nil
}

func (s *server) List(*api.Empty) (*api.ListResponse, error) {
	s.mu.Lock()
	cs := make([]*container, 0, len(s.containers))
	for _, c := range s.containers {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	r := &api.ListResponse{}
	for _, c := range cs {
		if st := c.state(); st.Status != "" {
			r.Containers = append(r.Containers, st)
		}
	}
	slices.SortFunc(r.Containers, func(a, b api.ContainerState) int { return strings.Compare(a.ID, b.ID) })
	return r, nil
}

func (s *server) Wait(req *api.IDRequest) (*api.ContainerState, error) {
	c, err := s.get(req.ID)
	if err != nil {
		return nil, err
	}
	<-c.exited
	st := c.state()
	return &st, nil
}

func (s *server) Delete(req *api.DeleteRequest) (*api.Empty, error) {
	if err := api.ValidateID(req.ID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c := s.containers[req.ID]
	s.mu.Unlock()
	if c == nil {
		// Nothing to forget but maybe a record of an earlier shim.
		os.RemoveAll(filepath.Join(s.dir, api.ContainersDir, req.ID))
		return &api.Empty{}, nil
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.deleted || c.state().Status == "" {
		return &api.Empty{}, nil
	}
	if err := c.remove(req.Force); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.containers[req.ID] == c {
		delete(s.containers, req.ID)
	}
	s.mu.Unlock()
	log.Printf("container %s deleted", req.ID)
	return &api.Empty{}, nil
}

func (s *server) ExecSync(req *api.ExecSyncRequest) (*api.ExecSyncResponse, error) {
	c, err := s.get(req.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case len(req.Cmd) == 0 || req.Cmd[0] == "":
		return nil, api.Errorf(api.ErrInvalid, "cmd: must name a command")
	case req.Timeout < 0:
		return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("timeout: %v is negative", req.Timeout))
	case req.OutputCap < 0:
		return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("output_cap: %d is negative", req.OutputCap))
	}
	for _, e := range req.Env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("env: %q is not NAME=value", e))
		}
	}
	return c.execSync(req)
}

func (s *server) ReopenLog(req *api.IDRequest) (*api.Empty, error) {
	c, err := s.get(req.ID)
	if err != nil {
		return nil, err
	}
	if c.log == nil {
		return nil, api.Errorf(api.ErrFailedPrecondition, fmt.Sprintf("container %s has no log path", req.ID))
	}
	select {
	case <-c.exited:
		return nil, api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited; its log is closed", req.ID))
	default:
	}
	if err := c.log.Reopen(); err != nil {
		return nil, fmt.Errorf("reopen log of %s: %w", req.ID, err)
	}
	return &api.Empty{}, nil
}

// Shutdown agrees to exit when no container is left; the exit itself runs
// after the answer was written (see main).
func (s *server) Shutdown(*api.Empty) (*api.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.containers); n > 0 {
		ids := make([]string, 0, n)
		for id := range s.containers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return nil, api.Errorf(api.ErrFailedPrecondition, fmt.Sprintf("%d container(s) left: %s", n, strings.Join(ids, ", ")))
	}
	s.closing = true
	return &api.Empty{}, nil
}
