package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testregistry"
)

type measureConfig struct {
	runtimes []*runtimeUnderTest
	reg      *testregistry.Registry
	image    testregistry.ImageInfo
	runs     int
	timeout  time.Duration
}

// pullSample is one measured pull.
type pullSample struct {
	Wall      time.Duration // the PullImage RPC, as the client sees it
	CPU       time.Duration // user+system time of the daemon meanwhile
	LayerGETs int           // registry GETs of the image's layer blobs
	BlobGETs  int           // all blob GETs (layers and config)
	Cleanup   time.Duration // from RemoveImage until the content was gone
	Stored    int64         // bytes in the runtime's store after the pull
}

// runtimeResult is what one runtime did over the whole benchmark.
type runtimeResult struct {
	Name    string
	Warmup  pullSample
	Samples []pullSample
	Memory  memory // after the last pull
	ImageID string
}

// measure pulls the image with every runtime, one warm-up round and then
// runs rounds, alternating the runtimes pull by pull so that noise on the
// machine falls on both alike. Before each pull the previous image and all
// its content are removed, and after it the registry's counters must show
// every layer downloaded: otherwise the pull would have measured a cache.
func measure(ctx context.Context, mc measureConfig) ([]runtimeResult, error) {
	results := make([]runtimeResult, len(mc.runtimes))
	for i, r := range mc.runtimes {
		results[i].Name = r.name
	}
	ref := imageRef(mc.image)
	for round := 0; round <= mc.runs; round++ {
		for i, r := range mc.runtimes {
			s, id, err := pullOnce(ctx, r, mc, ref)
			label := "warm-up"
			if round > 0 {
				label = fmt.Sprintf("run %d/%d", round, mc.runs)
			}
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", r.name, label, err)
			}
			fmt.Fprintf(os.Stderr, "bench: %-10s %-8s %6d ms  cpu %5d ms  layer GETs %d/%d  stored %5.1f MB  content gone %d ms after removal\n",
				r.name, label, s.Wall.Milliseconds(), s.CPU.Milliseconds(), s.LayerGETs, len(mc.image.LayerDigests),
				float64(s.Stored)/1e6, s.Cleanup.Milliseconds())
			if round == 0 {
				results[i].Warmup = s
				results[i].ImageID = id
			} else {
				results[i].Samples = append(results[i].Samples, s)
			}
		}
	}
	for i, r := range mc.runtimes {
		m, err := processMemory(r.pid())
		if err != nil {
			return nil, fmt.Errorf("%s memory: %w", r.name, err)
		}
		results[i].Memory = m
	}
	return results, nil
}

// pullOnce pulls ref into an empty store, then removes it again and waits
// until the runtime's store holds none of its content.
func pullOnce(ctx context.Context, r *runtimeUnderTest, mc measureConfig, ref string) (pullSample, string, error) {
	var s pullSample
	ctx, cancel := context.WithTimeout(ctx, mc.timeout)
	defer cancel()
	if err := waitContentGone(ctx, r); err != nil {
		return s, "", fmt.Errorf("before the pull: %w", err)
	}

	// Dirty pages of the previous pull, written back during this one,
	// would bill one runtime for the other's writes.
	unix.Sync()

	layersBefore := layerGETs(mc.reg, mc.image)
	blobsBefore := mc.reg.Requests()
	cpuBefore, err := cpuTime(r.pid())
	if err != nil {
		return s, "", err
	}
	start := time.Now()
	resp, err := r.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	s.Wall = time.Since(start)
	if err != nil {
		return s, "", fmt.Errorf("PullImage %s: %w", ref, err)
	}
	cpuAfter, err := cpuTime(r.pid())
	if err != nil {
		return s, "", err
	}
	s.CPU = cpuAfter - cpuBefore
	s.BlobGETs = int(mc.reg.Requests() - blobsBefore)
	layersAfter := layerGETs(mc.reg, mc.image)
	for i, d := range mc.image.LayerDigests {
		n := int(layersAfter[i] - layersBefore[i])
		if n == 0 {
			return s, "", fmt.Errorf("layer %s was not downloaded: the pull reused content a previous pull left behind", d)
		}
		s.LayerGETs += n
	}

	// The store must hold the pulled content where leftovers looks, or
	// waiting for it to be empty would prove nothing.
	if left, err := r.leftovers(); err != nil {
		return s, "", err
	} else if len(left) == 0 {
		return s, "", fmt.Errorf("after the pull nothing is stored where the benchmark checks for content; the store layout changed")
	}

	if s.Stored, err = storedBytes(r.storeDirs...); err != nil {
		return s, "", err
	}

	id := resp.GetImageRef()
	removed := time.Now()
	if _, err := r.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}}); err != nil {
		return s, id, fmt.Errorf("RemoveImage %s: %w", id, err)
	}
	st, err := r.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return s, id, fmt.Errorf("ImageStatus after RemoveImage: %w", err)
	}
	if st.GetImage() != nil {
		return s, id, fmt.Errorf("%s still listed after RemoveImage %s", ref, id)
	}
	if err := waitContentGone(ctx, r); err != nil {
		return s, id, fmt.Errorf("after RemoveImage %s: %w", id, err)
	}
	s.Cleanup = time.Since(removed)
	return s, id, nil
}

func layerGETs(reg *testregistry.Registry, img testregistry.ImageInfo) []int64 {
	out := make([]int64, len(img.LayerDigests))
	for i, d := range img.LayerDigests {
		out[i] = reg.BlobRequests(d)
	}
	return out
}

// waitContentGone polls the runtime's store until nothing of the removed
// image is left. containerd deletes content and snapshots in its garbage
// collector, which may finish after RemoveImage returns.
func waitContentGone(ctx context.Context, r *runtimeUnderTest) error {
	for {
		left, err := r.leftovers()
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("content still stored (%d entries, e.g. %s): %w", len(left), left[0], ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
