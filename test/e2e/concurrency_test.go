package e2e

import (
	"context"
	"github.com/berth-runtime/berth/images"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pullAll pulls every name at once, each on its own connection as separate
// kubelets or crictl runs would, and returns the IDs and errors in order.
func pullAll(t *testing.T, d *daemon, names []string) ([]string, []error) {
	t.Helper()
	ids := make([]string, len(names))
	errs := make([]error, len(names))
	clients := make([]runtimeapi.ImageServiceClient, len(names))
	for i := range names {
		conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		clients[i] = runtimeapi.NewImageServiceClient(conn)
	}
	ctx := d.ctx()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := clients[i].PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}})
			errs[i] = err
			if err == nil {
				ids[i] = resp.ImageRef
			}
		}()
	}
	close(start)
	wg.Wait()
	return ids, errs
}

// TestConcurrentPullsShareDownloads pulls big four times at once, by tag
// under two spellings and by digest, and checks each layer was downloaded
// exactly once and a later pull downloads nothing.
func TestConcurrentPullsShareDownloads(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	big := reg.Image("big")
	byDigest := "docker.io/" + big.Repo + "@" + big.ManifestDigest
	names := []string{dockerName(big), "berth/big", byDigest, byDigest}

	ids, errs := pullAll(t, d, names)
	for i := range names {
		if errs[i] != nil {
			t.Fatalf("pull %s: %v", names[i], errs[i])
		}
		if ids[i] != big.ConfigDigest {
			t.Fatalf("pull %s answered %s, want %s", names[i], ids[i], big.ConfigDigest)
		}
	}
	for i, l := range big.LayerDigests {
		if n := reg.BlobRequests(l); n != 1 {
			t.Errorf("layer %d (%s) was fetched %d times, want once", i, l, n)
		}
	}
	imgs := d.list()
	if len(imgs) != 1 {
		t.Fatalf("list: %d images, want 1: %+v", len(imgs), imgs)
	}
	if !slices.Equal(imgs[0].RepoTags, []string{dockerName(big)}) || !slices.Equal(imgs[0].RepoDigests, []string{byDigest}) {
		t.Errorf("tags %v digests %v", imgs[0].RepoTags, imgs[0].RepoDigests)
	}
	checkBigLayers(t, d, big.DiffIDs)

	before := reg.Requests()
	if id := d.mustPull(dockerName(big)); id != big.ConfigDigest {
		t.Fatalf("pull again answered %s", id)
	}
	if n := reg.Requests() - before; n != 0 {
		t.Errorf("pulling a stored image fetched %d blobs, want none", n)
	}
}

// TestConcurrentPullsOfImagesSharingALayer pulls different images whose
// base layer is the same blob at once: the shared layer is fetched once.
func TestConcurrentPullsOfImagesSharingALayer(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	catalog := []string{"busybox", "user", "username", "multilayer", "multiarch"}
	names := make([]string, len(catalog))
	for i, c := range catalog {
		names[i] = dockerName(reg.Image(c))
	}
	base := reg.Image("busybox").LayerDigests[0]
	for _, c := range catalog {
		if reg.Image(c).LayerDigests[0] != base {
			t.Fatalf("catalog image %s does not share busybox's base layer", c)
		}
	}

	ids, errs := pullAll(t, d, names)
	for i, c := range catalog {
		if errs[i] != nil || ids[i] != reg.Image(c).ConfigDigest {
			t.Fatalf("pull %s: %s %v", names[i], ids[i], errs[i])
		}
	}
	if n := reg.BlobRequests(base); n != 1 {
		t.Errorf("the shared base layer was fetched %d times, want once", n)
	}
	if got := d.list(); len(got) != len(catalog) {
		t.Errorf("list: %d images, want %d", len(got), len(catalog))
	}
	baseChain := images.ChainIDs(reg.Image("busybox").DiffIDs)[0]
	checkLayerMeta(t, d, baseChain)
}

// TestRemoveDuringPullKeepsSharedLayer removes the only image using a layer
// while a pull that needs the same layer is under way: the layer must
// survive for the pull, which then completes with a usable image.
func TestRemoveDuringPullKeepsSharedLayer(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	busybox := reg.Image("busybox")
	big := reg.Image("big")
	d.mustPull("busybox")
	baseChain := images.ChainIDs(busybox.DiffIDs)[0]

	// Stall blobs so the pull of big is still running, past the point
	// where it found the base layer already stored, when busybox goes.
	reg.SetDelay(time.Second)
	done := make(chan error, 1)
	ctx := d.ctx()
	go func() {
		_, err := d.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: dockerName(big)}})
		done <- err
	}()
	if !waitUntil(20*time.Second, func() bool { return reg.BlobRequests(big.LayerDigests[1]) > 0 }) {
		t.Fatal("the pull of big did not reach its layers")
	}
	d.remove("busybox")
	reg.SetDelay(0)
	if err := <-done; err != nil {
		t.Fatalf("pull big: %v", err)
	}
	if img := d.status("busybox"); img != nil {
		t.Fatalf("busybox still listed: %+v", img)
	}
	if img := d.status(dockerName(big)); img == nil || img.Id != big.ConfigDigest {
		t.Fatalf("status big: %+v", img)
	}
	checkBigLayers(t, d, big.DiffIDs)
	if _, err := os.Stat(d.layerFS(baseChain, "bin", "sh")); err != nil {
		t.Errorf("the shared base layer lost /bin/sh: %v", err)
	}
	if n := reg.BlobRequests(busybox.LayerDigests[0]); n != 1 {
		t.Errorf("the base layer was fetched %d times, want once (by the busybox pull)", n)
	}
}

// startPull starts a pull on its own connection with its own context and
// returns the context's cancel func and a channel with the result.
func startPull(t *testing.T, d *daemon, name string) (context.CancelFunc, <-chan error) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		_, err := runtimeapi.NewImageServiceClient(conn).PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}})
		done <- err
	}()
	return cancel, done
}

// TestCanceledPullDoesNotFailSharedPull: two clients pull the same name at
// once and share the work; the first gives up (kubelet's pull deadline, a
// crictl interrupted with ^C). The other client did not cancel and must
// still get its image.
func TestCanceledPullDoesNotFailSharedPull(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	busybox := reg.Image("busybox")

	reg.SetDelay(2 * time.Second)
	cancelFirst, first := startPull(t, d, "busybox")
	if !waitUntil(20*time.Second, func() bool { return reg.Requests() > 0 }) {
		t.Fatal("the first pull did not start")
	}
	_, second := startPull(t, d, "docker.io/library/busybox:latest")
	time.Sleep(200 * time.Millisecond) // let the second call reach the daemon
	cancelFirst()
	if err := <-first; status.Code(err) != codes.Canceled {
		t.Logf("first pull after cancel: %v", err)
	}
	reg.SetDelay(0)
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("a pull that was not canceled failed because another caller canceled: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the second pull did not finish")
	}
	if img := d.status("busybox"); img == nil || img.Id != busybox.ConfigDigest {
		t.Fatalf("status after the second pull: %+v", img)
	}
}

// TestCanceledPullDoesNotFailSharedLayer: two different images that share
// a layer are pulled at once and share its download; the pull that started
// the download is canceled. The other pull must still complete.
func TestCanceledPullDoesNotFailSharedLayer(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	user := reg.Image("user")
	base := reg.Image("busybox").LayerDigests[0]
	if user.LayerDigests[0] != base {
		t.Fatal("catalog: user does not share busybox's base layer")
	}

	// Each blob GET reads the delay when it starts. The first pull's config
	// and then its base layer stall for 3s each ...
	reg.SetDelay(3 * time.Second)
	cancelFirst, first := startPull(t, d, "busybox")
	if !waitUntil(20*time.Second, func() bool { return reg.BlobRequests(base) > 0 }) {
		t.Fatal("the first pull did not reach its layer")
	}
	// ... and while the layer is stalled, the second pull gets its config
	// after a short stall and joins the layer's download.
	reg.SetDelay(300 * time.Millisecond)
	_, second := startPull(t, d, dockerName(user))
	if !waitUntil(20*time.Second, func() bool { return reg.BlobRequests(user.ConfigDigest) > 0 }) {
		t.Fatal("the second pull did not start")
	}
	reg.SetDelay(0)
	time.Sleep(time.Second)
	if reg.BlobRequests(base) != 1 {
		t.Fatalf("the base layer was requested %d times before the cancel; the pulls did not share it", reg.BlobRequests(base))
	}
	cancelFirst()
	<-first
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("a pull that was not canceled failed because another pull sharing its layer was: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the second pull did not finish")
	}
	if img := d.status(dockerName(user)); img == nil || img.Id != user.ConfigDigest {
		t.Fatalf("status of the second image: %+v", img)
	}
	checkLayerMeta(t, d, images.ChainIDs(user.DiffIDs)[0])
}
