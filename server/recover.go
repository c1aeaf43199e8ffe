package server

import (
	"context"
	"os"
	"path/filepath"

	"github.com/berth-runtime/berth/oci/rootfs"
	"github.com/berth-runtime/berth/server/store"
)

// Recover brings the records in line with the node after berthd starts:
// pods that were being created when berthd died are torn down, containers
// get their state from their monitors (or from what a dead monitor last
// wrote), and the layers of every container are held again.
func (s *Server) Recover(ctx context.Context) {
	for _, p := range s.store.Pods() {
		if p.Phase != store.PodCreating {
			continue
		}
		s.log.Infof("pod %s was being created when berthd stopped; removing what exists of it", p.ID)
		if err := s.removePod(ctx, p); err != nil {
			s.log.WithError(err).Warnf("cleaning up pod %s", p.ID)
		}
	}
	for _, p := range s.store.Pods() {
		s.reopenHostPorts(p)
	}
	for _, c := range s.store.Containers("") {
		if _, err := s.store.Pod(c.PodID); err != nil {
			s.log.Warnf("container %s belongs to no pod; removing it", c.ID)
			if err := s.removeContainer(ctx, c); err != nil {
				s.log.WithError(err).Warnf("removing container %s", c.ID)
			}
			continue
		}
		s.holdContainer(c.ID, s.images.Hold(c.Layers...))
		if _, err := s.refreshContainer(ctx, c.ID); err != nil {
			s.log.WithError(err).Warnf("container %s: state", c.ID)
		}
	}
	s.removeStrays()
}

// removeStrays deletes container and pod directories that no record names:
// the records live under state_dir and end with the node, while writable
// layers live under root and would otherwise stay forever.
func (s *Server) removeStrays() {
	known := map[string]bool{}
	for _, c := range s.store.Containers("") {
		known[c.ID] = true
	}
	for _, p := range s.store.Pods() {
		known[p.ID] = true
	}
	for _, dir := range []string{
		filepath.Join(s.cfg.StateDir, "containers"),
		filepath.Join(s.cfg.Root, "containers"),
		filepath.Join(s.cfg.StateDir, "pods"),
	} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if known[e.Name()] {
				continue
			}
			p := filepath.Join(dir, e.Name())
			s.log.Infof("removing %s: no pod or container record names it", p)
			unmountImageVolumes(p)
			rootfs.Unmount(filepath.Join(p, "rootfs"))
			rootfs.UnmountLowers(filepath.Join(p, "rootfs"))
			unmountAll(filepath.Join(p, "shm"))
			nsDir := filepath.Join(p, "ns")
			removeNamespaces(map[int]string{0: filepath.Join(nsDir, "net"), 1: filepath.Join(nsDir, "ipc"), 2: filepath.Join(nsDir, "uts"), 3: usernsPin(p)})
			if err := os.RemoveAll(p); err != nil {
				s.log.WithError(err).Warnf("removing %s", p)
			}
		}
	}
}
