package server

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func testEvent(i int) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{ContainerId: fmt.Sprint(i), CreatedAt: int64(i)}
}

func (b *eventBroker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// publishWithin fails the test if publish blocks.
func publishWithin(t *testing.T, b *eventBroker, ev *runtimeapi.ContainerEventResponse) {
	t.Helper()
	done := make(chan struct{})
	go func() { b.publish(ev); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked")
	}
}

func TestEventBrokerFanOut(t *testing.T) {
	var b eventBroker
	var subs []*eventSub
	for range 3 {
		sub, unsub := b.subscribe()
		defer unsub()
		subs = append(subs, sub)
	}
	if !b.active() {
		t.Fatal("broker with subscribers is not active")
	}
	const n = 50
	for i := range n {
		publishWithin(t, &b, testEvent(i))
	}
	for si, sub := range subs {
		for i := range n {
			select {
			case ev := <-sub.ch:
				if ev.CreatedAt != int64(i) {
					t.Fatalf("subscriber %d: event %d is %d, want in publish order", si, i, ev.CreatedAt)
				}
			default:
				t.Fatalf("subscriber %d got %d events, want %d", si, i, n)
			}
		}
	}
}

func TestEventBrokerDropsSlowSubscriber(t *testing.T) {
	b := eventBroker{size: 2}
	slow, unsubSlow := b.subscribe()
	defer unsubSlow()
	fast, unsubFast := b.subscribe()
	defer unsubFast()
	var got []int64
	for i := range 5 {
		publishWithin(t, &b, testEvent(i))
		got = append(got, (<-fast.ch).CreatedAt)
	}
	select {
	case <-slow.dropped:
	default:
		t.Fatal("a subscriber that fell behind was not dropped")
	}
	select {
	case <-fast.dropped:
		t.Fatal("a subscriber that kept up was dropped")
	default:
	}
	if len(got) != 5 || got[4] != 4 {
		t.Errorf("fast subscriber got %v, want 0..4", got)
	}
	if len(slow.ch) != 2 {
		t.Errorf("dropped subscriber holds %d events, want its 2 buffered", len(slow.ch))
	}
	if b.count() != 1 {
		t.Errorf("%d subscribers, want 1 after the drop", b.count())
	}
	unsubSlow() // after a drop, unsubscribing is harmless
}

func TestEventBrokerUnsubscribe(t *testing.T) {
	var b eventBroker
	sub, unsub := b.subscribe()
	unsub()
	if b.count() != 0 || b.active() {
		t.Fatalf("%d subscribers after unsubscribe, want 0", b.count())
	}
	publishWithin(t, &b, testEvent(1))
	if len(sub.ch) != 0 {
		t.Error("an unsubscribed subscriber still got an event")
	}
}

// fakeEventStream is the server side of a GetContainerEvents stream.
type fakeEventStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent chan *runtimeapi.ContainerEventResponse
}

func (f *fakeEventStream) Context() context.Context { return f.ctx }

func (f *fakeEventStream) SendHeader(metadata.MD) error { return nil }

func (f *fakeEventStream) Send(ev *runtimeapi.ContainerEventResponse) error {
	select {
	case f.sent <- ev:
		return nil
	case <-f.ctx.Done():
		return io.EOF
	}
}

func runEventStream(s *Server, ctx context.Context, sent chan *runtimeapi.ContainerEventResponse) chan error {
	done := make(chan error, 1)
	go func() {
		done <- s.GetContainerEvents(&runtimeapi.GetEventsRequest{}, &fakeEventStream{ctx: ctx, sent: sent})
	}()
	return done
}

func waitSubscribers(t *testing.T, b *eventBroker, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", b.count(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGetContainerEventsStream(t *testing.T) {
	s := &Server{}
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan *runtimeapi.ContainerEventResponse, 1)
	done := runEventStream(s, ctx, sent)
	waitSubscribers(t, &s.events, 1)
	s.events.publish(testEvent(7))
	select {
	case ev := <-sent:
		if ev.CreatedAt != 7 {
			t.Errorf("sent %v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event not sent on the stream")
	}
	cancel()
	select {
	case err := <-done:
		if status.Code(toStatus(err)) != codes.Canceled {
			t.Errorf("stream ended with %v, want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end with its context")
	}
	if s.events.count() != 0 {
		t.Error("subscriber outlived its stream")
	}
}

func TestGetContainerEventsDroppedEndsStream(t *testing.T) {
	s := &Server{}
	s.events.size = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make(chan *runtimeapi.ContainerEventResponse) // the client is stuck until read
	done := runEventStream(s, ctx, sent)
	waitSubscribers(t, &s.events, 1)
	// The handler holds one event in Send, one sits in the buffer, the
	// next finds the buffer full.
	for i := range 5 {
		publishWithin(t, &s.events, testEvent(i))
	}
	waitSubscribers(t, &s.events, 0)
	for {
		select {
		case <-sent: // the client catches up; the stream must end anyway
		case err := <-done:
			if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "subscribe again") {
				t.Errorf("dropped stream ended with %v, want ResourceExhausted", err)
			}
			return
		case <-time.After(5 * time.Second):
			t.Fatal("stream of a dropped subscriber did not end")
		}
	}
}

func TestUpdateRuntimeConfigPodCIDR(t *testing.T) {
	s := &Server{log: logrus.NewEntry(logrus.New())}
	req := func(cidr string) *runtimeapi.UpdateRuntimeConfigRequest {
		return &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}}}
	}
	for _, cidr := range []string{"10.88.0.0/16", "fd00::/64", "10.88.0.0/16,fd00::/64", ""} {
		if _, err := s.UpdateRuntimeConfig(context.Background(), req(cidr)); err != nil {
			t.Errorf("pod_cidr %q: %v", cidr, err)
		}
		if got := s.currentPodCIDR(); got != cidr {
			t.Errorf("pod_cidr %q kept as %q", cidr, got)
		}
	}
	if _, err := s.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{}); err != nil {
		t.Errorf("empty request: %v", err)
	}
	s.UpdateRuntimeConfig(context.Background(), req("10.1.0.0/24"))
	for _, cidr := range []string{"10.88.0.0", "banana", "10.88.0.0/33", "10.0.0.0/8,", "10.0.0.0/8,x"} {
		_, err := s.UpdateRuntimeConfig(context.Background(), req(cidr))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "runtime_config.network_config.pod_cidr") {
			t.Errorf("pod_cidr %q: %v, want InvalidArgument naming runtime_config.network_config.pod_cidr", cidr, err)
		}
	}
	if got := s.currentPodCIDR(); got != "10.1.0.0/24" {
		t.Errorf("a rejected pod_cidr replaced the kept one: %q", got)
	}
}

func TestCheckpointContainerUnimplemented(t *testing.T) {
	_, err := (&Server{}).CheckpointContainer(context.Background(), &runtimeapi.CheckpointContainerRequest{ContainerId: "x"})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "checkpoint/restore is not supported by berth") {
		t.Errorf("CheckpointContainer: %v", err)
	}
}

func TestBrokerCloseEndsStreams(t *testing.T) {
	var b eventBroker
	done := b.done()
	b.close()
	b.close() // again: no panic
	select {
	case <-done:
	default:
		t.Fatal("close did not signal the streams to end")
	}
	select {
	case <-b.done():
	default:
		t.Fatal("a stream opened after close would never end")
	}
}
