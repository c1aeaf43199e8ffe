package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/server/store"
)

// shimCallTimeout bounds a control call that should answer at once.
const shimCallTimeout = 30 * time.Second

func (s *Server) setShim(podID string, c *shim.Client) {
	s.shimsMu.Lock()
	s.shims[podID] = c
	s.shimsMu.Unlock()
}

// shimFor returns the pod's monitor client, reconnecting after a berthd
// restart. It fails with shim.ErrShimGone when the monitor is dead.
func (s *Server) shimFor(pod *store.Pod) (*shim.Client, error) {
	s.shimsMu.Lock()
	defer s.shimsMu.Unlock()
	if c, ok := s.shims[pod.ID]; ok {
		return c, nil
	}
	if pod.ShimDir == "" {
		return nil, shim.ErrShimGone
	}
	c, err := shim.Connect(pod.ShimDir)
	if err != nil {
		return nil, err
	}
	s.shims[pod.ID] = c
	return c, nil
}

func (s *Server) forgetShim(podID string) {
	s.shimsMu.Lock()
	if c, ok := s.shims[podID]; ok {
		c.Close()
		delete(s.shims, podID)
	}
	s.shimsMu.Unlock()
}

// stopShim asks the monitor to exit and, if it will not or cannot, kills
// it by its PID (only when that PID still is the monitor: its socket dir
// is ours), then removes its directory.
func (s *Server) stopShim(pod *store.Pod, c *shim.Client, pid int) error {
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shimCallTimeout)
		err := c.Shutdown(ctx)
		cancel()
		if err != nil && !errors.Is(err, shim.ErrShimGone) {
			s.log.WithError(err).Warnf("pod %s: monitor refused to exit; killing it", pod.ID)
		}
		c.Close()
	}
	s.forgetShim(pod.ID)
	if pid > 0 && shimAlive(pid, pod.ShimDir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// The monitor's cgroup also holds the pod's PID namespace holder;
	// whatever is left in it goes now.
	if err := cgroups.Remove(s.cfg.Runtime.ShimCgroup+"/"+pod.ID, true); err != nil {
		return err
	}
	if pod.ShimDir != "" {
		return os.RemoveAll(pod.ShimDir)
	}
	return nil
}

// shimAlive reports whether pid still runs the monitor of the pod whose
// directory is dir, so a recycled PID is never signalled.
func shimAlive(pid int, dir string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(dir))
}
