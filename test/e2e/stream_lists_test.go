package e2e

import (
	"errors"
	"io"
	"slices"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// drain reads a server stream to its end and returns what each message
// held, flattened by pick.
func drain[R any, T any](t *testing.T, stream grpc.ServerStreamingClient[R], err error, pick func(*R) []T) []T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pick(m)...)
	}
}

// The Stream* RPCs answer what the List RPCs answer, in chunks.
func TestStreamLists(t *testing.T) {
	p := startPodDaemon(t, "")
	imageID := p.mustPull("busybox")
	podCfg := p.podConfig("streamed")
	pod := p.runPod(podCfg)
	ctr := p.runCtr(pod, podCfg, ctrConfig("sleeper", "busybox", "sleep", "1000"))
	ctx := p.ctx()

	s1, err := p.rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{})
	pods := drain(t, s1, err, func(m *runtimeapi.StreamPodSandboxesResponse) []*runtimeapi.PodSandbox { return m.PodSandboxes })
	if len(pods) != 1 || pods[0].Id != pod {
		t.Fatalf("StreamPodSandboxes: %v", pods)
	}
	s2, err := p.rt.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
	ctrs := drain(t, s2, err, func(m *runtimeapi.StreamContainersResponse) []*runtimeapi.Container { return m.Containers })
	if len(ctrs) != 1 || ctrs[0].Id != ctr || ctrs[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("StreamContainers: %v", ctrs)
	}
	s3, err := p.img.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	imgs := drain(t, s3, err, func(m *runtimeapi.StreamImagesResponse) []*runtimeapi.Image { return m.Images })
	if !slices.ContainsFunc(imgs, func(i *runtimeapi.Image) bool { return i.Id == imageID }) {
		t.Fatalf("StreamImages lacks %s: %v", imageID, imgs)
	}
	s4, err := p.rt.StreamContainerStats(ctx, &runtimeapi.StreamContainerStatsRequest{})
	cstats := drain(t, s4, err, func(m *runtimeapi.StreamContainerStatsResponse) []*runtimeapi.ContainerStats { return m.ContainerStats })
	if len(cstats) != 1 || cstats[0].GetAttributes().GetId() != ctr {
		t.Fatalf("StreamContainerStats: %v", cstats)
	}
	s5, err := p.rt.StreamPodSandboxStats(ctx, &runtimeapi.StreamPodSandboxStatsRequest{})
	pstats := drain(t, s5, err, func(m *runtimeapi.StreamPodSandboxStatsResponse) []*runtimeapi.PodSandboxStats {
		return m.PodSandboxStats
	})
	if len(pstats) != 1 || pstats[0].GetAttributes().GetId() != pod {
		t.Fatalf("StreamPodSandboxStats: %v", pstats)
	}
	// A filter that matches nothing ends the stream with no message.
	s6, err := p.rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{Filter: &runtimeapi.PodSandboxFilter{Id: "ffffffff"}})
	if got := drain(t, s6, err, func(m *runtimeapi.StreamPodSandboxesResponse) []*runtimeapi.PodSandbox { return m.PodSandboxes }); len(got) != 0 {
		t.Fatalf("filtered stream: %v", got)
	}
}
