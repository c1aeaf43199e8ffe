package server

import (
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/server/store"
)

// eventBuffer is how many events a subscriber may fall behind by before it
// is dropped. kubelet relists when its event stream breaks, so dropping a
// slow reader loses nothing it cannot recover, while waiting for it would
// stall every RPC that publishes.
const eventBuffer = 1000

// eventBroker fans container events out to the GetContainerEvents streams.
// Its zero value is ready to use.
type eventBroker struct {
	mu     sync.Mutex
	subs   map[*eventSub]struct{}
	size   int           // buffer per subscriber; 0 means eventBuffer
	closed chan struct{} // closed when berthd stops; made on first use
}

// done is closed when berthd stops, to end every stream: kubelet keeps one
// open for good, and a graceful stop would otherwise wait for it.
func (b *eventBroker) done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed == nil {
		b.closed = make(chan struct{})
	}
	return b.closed
}

// close ends every stream; calling it again does nothing.
func (b *eventBroker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed == nil {
		b.closed = make(chan struct{})
	}
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
}

// eventSub is one subscriber: events arrive on ch; dropped is closed when
// the broker gave up on it for falling behind.
type eventSub struct {
	ch      chan *runtimeapi.ContainerEventResponse
	dropped chan struct{}
}

// subscribe adds a subscriber; the returned func removes it and must be
// called once the subscriber stops reading.
func (b *eventBroker) subscribe() (*eventSub, func()) {
	size := b.size
	if size <= 0 {
		size = eventBuffer
	}
	sub := &eventSub{ch: make(chan *runtimeapi.ContainerEventResponse, size), dropped: make(chan struct{})}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*eventSub]struct{}{}
	}
	b.subs[sub] = struct{}{}
	b.mu.Unlock()
	return sub, func() {
		b.mu.Lock()
		delete(b.subs, sub)
		b.mu.Unlock()
	}
}

// active says whether anyone listens, so publishers can skip building an
// event nobody reads.
func (b *eventBroker) active() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// publish hands ev to every subscriber without ever waiting: one whose
// buffer is full is dropped. Holding the lock while sending keeps every
// subscriber's events in one order.
func (b *eventBroker) publish(ev *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs {
		select {
		case sub.ch <- ev:
		default:
			delete(b.subs, sub)
			close(sub.dropped)
		}
	}
}

// GetContainerEvents streams container lifecycle events (created, started,
// stopped, deleted) until the client goes away or falls too far behind.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	sub, unsubscribe := s.events.subscribe()
	defer unsubscribe()
	// Headers now, before any event, tell the client it is subscribed:
	// whatever happens after it receives them reaches it.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	ctx := stream.Context()
	stopping := s.events.done()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stopping:
			return status.Error(codes.Unavailable, "GetContainerEvents: berthd is stopping")
		case <-sub.dropped:
			return status.Errorf(codes.ResourceExhausted, "GetContainerEvents: the client fell more than %d events behind; subscribe again", cap(sub.ch))
		case ev := <-sub.ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// emitContainerEvent publishes an event for c with its status and its
// pod's status as they are now.
func (s *Server) emitContainerEvent(typ runtimeapi.ContainerEventType, c *store.Container) {
	if c == nil || !s.events.active() {
		return
	}
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        c.ID,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
		ContainersStatuses: []*runtimeapi.ContainerStatus{s.containerStatus(c)},
	}
	if pod, err := s.store.Pod(c.PodID); err == nil {
		ev.PodSandboxStatus = podStatus(pod)
	}
	s.events.publish(ev)
}

// updateState applies a monitor's view of a container to its record and
// publishes CONTAINER_STOPPED_EVENT when that makes it exited. The check
// runs on the record under the store's lock, so however many refreshes
// race, only the one that moves it to exited publishes.
func (s *Server) updateState(id string, st shim.ContainerState) (*store.Container, error) {
	exited := false
	c, err := s.store.UpdateContainer(id, func(r *store.Container) error {
		was := r.State
		applyState(r, st)
		exited = was != store.ContainerExited && r.State == store.ContainerExited
		return nil
	})
	if err == nil && exited {
		s.emitContainerEvent(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
	}
	return c, err
}
