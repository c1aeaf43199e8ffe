package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventStream is one GetContainerEvents subscriber: what it receives goes
// to events; the stream's error, when it ends, to done.
type eventStream struct {
	cancel context.CancelFunc
	events chan *runtimeapi.ContainerEventResponse
	done   chan error
}

// subscribeEvents opens a GetContainerEvents stream and returns once
// berthd has subscribed it (it sends headers then), so no later event is
// missed.
func (p *podDaemon) subscribeEvents(t *testing.T) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// An open stream would hold up berthd's graceful stop at cleanup.
	t.Cleanup(cancel)
	stream, err := p.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("GetContainerEvents headers: %v", err)
	}
	es := &eventStream{cancel: cancel, events: make(chan *runtimeapi.ContainerEventResponse, 100), done: make(chan error, 1)}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				es.done <- err
				return
			}
			select {
			case es.events <- ev:
			case <-ctx.Done():
			}
		}
	}()
	return es
}

// next returns the stream's next event about container id.
func (es *eventStream) next(t *testing.T, id string) *runtimeapi.ContainerEventResponse {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-es.events:
			if ev.ContainerId == id {
				return ev
			}
		case err := <-es.done:
			t.Fatalf("event stream ended: %v", err)
		case <-timeout:
			t.Fatalf("no event for container %s within 30 s", id)
		}
	}
}

// expectLifecycle checks that es reports container ctr of pod going
// through created, started, stopped and deleted, in that order.
func expectLifecycle(t *testing.T, name string, es *eventStream, ctr, pod string) {
	t.Helper()
	want := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	}
	var last int64
	for _, typ := range want {
		ev := es.next(t, ctr)
		if ev.ContainerEventType != typ {
			t.Fatalf("%s: event %s, want %s", name, ev.ContainerEventType, typ)
		}
		if ev.GetPodSandboxStatus().GetId() != pod {
			t.Errorf("%s: %s: pod %q, want %q", name, typ, ev.GetPodSandboxStatus().GetId(), pod)
		}
		if sts := ev.GetContainersStatuses(); len(sts) != 1 || sts[0].GetId() != ctr {
			t.Errorf("%s: %s: container statuses %v, want the one of %s", name, typ, sts, ctr)
		}
		if ev.CreatedAt < last || ev.CreatedAt == 0 {
			t.Errorf("%s: %s: created_at %d after %d", name, typ, ev.CreatedAt, last)
		}
		last = ev.CreatedAt
		st := ev.GetContainersStatuses()[0]
		switch typ {
		case runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT:
			if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 {
				t.Errorf("%s: %s: container %s exit code %d, want exited with 0", name, typ, st.State, st.ExitCode)
			}
		}
	}
}

// TestPodEvents follows a container that exits on its own through two
// GetContainerEvents subscribers, then checks that one subscriber leaving
// affects neither berthd nor the other.
func TestPodEvents(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("events")
	pod := p.runPod(podCfg)
	a, b := p.subscribeEvents(t), p.subscribeEvents(t)

	cfg := ctrConfig("quick", "busybox", "sh", "-c", "exit 0")
	ctr := p.runCtr(pod, podCfg, cfg)
	p.waitExited(ctr, 30*time.Second)
	// Status polls after the exit must not report it again.
	p.ctrStatus(ctr)
	p.ctrStatus(ctr)
	if _, err := p.rt.RemoveContainer(p.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: ctr}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	expectLifecycle(t, "subscriber 1", a, ctr, pod)
	expectLifecycle(t, "subscriber 2", b, ctr, pod)
	for name, es := range map[string]*eventStream{"subscriber 1": a, "subscriber 2": b} {
		select {
		case ev := <-es.events:
			t.Errorf("%s: extra event %s for %s", name, ev.ContainerEventType, ev.ContainerId)
		default:
		}
	}

	a.cancel()
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled stream did not end")
	}
	if _, err := p.rt.Version(p.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("Version after a subscriber left: %v", err)
	}
	again := p.runCtr(pod, podCfg, ctrConfig("again", "busybox", "sh", "-c", "exit 0"))
	p.waitExited(again, 30*time.Second)
	if _, err := p.rt.RemoveContainer(p.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: again}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	expectLifecycle(t, "remaining subscriber", b, again, pod)
}

// TestRuntimeConfigAndCheckpoint: the pod CIDR kubelet sets shows in
// Status's verbose info, a bad one is refused naming the field, and
// CheckpointContainer says plainly that berth cannot checkpoint.
func TestRuntimeConfigAndCheckpoint(t *testing.T) {
	d := startDaemon(t, "")
	update := func(cidr string) error {
		_, err := d.rt.UpdateRuntimeConfig(d.ctx(), &runtimeapi.UpdateRuntimeConfigRequest{
			RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}},
		})
		return err
	}
	if err := update("10.244.1.0/24"); err != nil {
		t.Fatalf("UpdateRuntimeConfig: %v", err)
	}
	wantCode(t, "UpdateRuntimeConfig with a bad CIDR", update("10.244.1.0"), codes.InvalidArgument, "runtime_config.network_config.pod_cidr")
	resp, err := d.rt.Status(d.ctx(), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.Info["config"]), &info); err != nil {
		t.Fatalf("Status verbose info %q: %v", resp.Info["config"], err)
	}
	if info["podCIDR"] != "10.244.1.0/24" {
		t.Errorf("Status verbose info podCIDR %v, want 10.244.1.0/24", info["podCIDR"])
	}
	_, err = d.rt.CheckpointContainer(d.ctx(), &runtimeapi.CheckpointContainerRequest{ContainerId: "x"})
	wantCode(t, "CheckpointContainer", err, codes.Unimplemented, "checkpoint/restore is not supported by berth")
}
