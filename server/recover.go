package server

import (
	"context"

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
}
