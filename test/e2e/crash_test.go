package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/berth-runtime/berth/images"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestKillDuringPull kills berthd with SIGKILL while several layers of an
// image are half downloaded and half unpacked, then checks that the next
// berthd on the same root starts from a consistent store: the interrupted
// image is not listed, no partial layer is kept, earlier images are intact,
// and the image pulls again completely.
func TestKillDuringPull(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	busybox := reg.Image("busybox")
	big := reg.Image("big")
	d.mustPull("busybox") // shares big's base layer, so big needs the other four

	// Every blob GET stalls part way. The config comes first and stalls for
	// the same time, then big's four data layers start at once (the default
	// max_concurrent_downloads) and stall with their first bytes unpacked
	// into tmp/. The stall is long enough to kill berthd inside it.
	const stall = 3 * time.Second
	reg.SetDelay(stall)
	// The pull has its own connection so that its error comes from the
	// daemon dying, not from the harness closing the shared connection.
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pullErr := make(chan error, 1)
	ctx := d.ctx()
	go func() {
		_, err := runtimeapi.NewImageServiceClient(conn).PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: dockerName(big)}})
		pullErr <- err
	}()
	dataLayers := big.LayerDigests[1:]
	started := waitUntil(20*time.Second, func() bool {
		for _, l := range dataLayers {
			if reg.BlobRequests(l) == 0 {
				return false
			}
		}
		return len(dirNames(t, d.imagesDir("tmp"))) >= len(dataLayers)
	})
	if !started {
		t.Fatalf("the layers of big did not start downloading (blob requests %d, tmp %v)", reg.Requests(), dirNames(t, d.imagesDir("tmp")))
	}
	d.kill()
	select {
	case err := <-pullErr:
		if err == nil {
			t.Fatal("the pull succeeded although berthd was killed during it")
		}
		t.Logf("pull after SIGKILL: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the pull call did not end after berthd was killed")
	}
	reg.SetDelay(0)

	d.start()
	for _, img := range d.list() {
		if img.Id == big.ConfigDigest {
			t.Fatalf("the interrupted image is listed: %+v", img)
		}
	}
	if img := d.status("busybox"); img == nil || img.Id != busybox.ConfigDigest {
		t.Fatalf("busybox after the restart: %+v", img)
	}
	if img := d.status(dockerName(big)); img != nil {
		t.Fatalf("status of the interrupted image: %+v", img)
	}
	if names := dirNames(t, d.imagesDir("tmp")); len(names) != 0 {
		t.Errorf("tmp not cleared at start: %v", names)
	}
	layers := dirNames(t, d.imagesDir("layers"))
	for _, l := range layers {
		checkLayerMeta(t, d, "sha256:"+l)
	}
	// Only busybox's layer is named by an image; nothing else may stay.
	if want := strings.TrimPrefix(images.ChainIDs(busybox.DiffIDs)[0], "sha256:"); len(layers) != 1 || layers[0] != want {
		t.Errorf("layer dirs after the restart %v, want only busybox's %s", layers, want)
	}
	if fi, err := os.Stat(d.layerFS(images.ChainIDs(busybox.DiffIDs)[0], "bin", "busybox")); err != nil || fi.Size() == 0 {
		t.Errorf("busybox's layer damaged: %v", err)
	}

	if id := d.mustPull(dockerName(big)); id != big.ConfigDigest {
		t.Fatalf("pull big after the restart answered %s, want %s", id, big.ConfigDigest)
	}
	img := d.status(dockerName(big))
	if img == nil || img.Id != big.ConfigDigest || img.Size != uint64(big.Size) {
		t.Fatalf("status big: %+v", img)
	}
	checkBigLayers(t, d, big.DiffIDs)
	if names := dirNames(t, d.imagesDir("tmp")); len(names) != 0 {
		t.Errorf("tmp after a complete pull: %v", names)
	}
}

// checkLayerMeta checks a layer directory is whole: its meta.json, written
// last, names the diff ID and a size.
func checkLayerMeta(t *testing.T, d *daemon, chain string) {
	t.Helper()
	dir := d.imagesDir("layers", strings.TrimPrefix(chain, "sha256:"))
	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Errorf("layer %s has no meta.json: %v", chain, err)
		return
	}
	var meta struct {
		DiffID string `json:"diffID"`
		Bytes  int64  `json:"bytes"`
		Inodes int64  `json:"inodes"`
	}
	if err := json.Unmarshal(data, &meta); err != nil || meta.Bytes <= 0 || meta.Inodes <= 0 || !strings.HasPrefix(meta.DiffID, "sha256:") {
		t.Errorf("layer %s meta.json %q: %v", chain, data, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "fs")); err != nil || !fi.IsDir() {
		t.Errorf("layer %s has no fs dir: %v", chain, err)
	}
}

// checkBigLayers checks every layer of big is stored and its files have
// their full size: 3 files of 4 MiB under /big/layerN in data layer N.
func checkBigLayers(t *testing.T, d *daemon, diffIDs []string) {
	t.Helper()
	chains := images.ChainIDs(diffIDs)
	for i, c := range chains {
		checkLayerMeta(t, d, c)
		if i == 0 {
			if fi, err := os.Stat(d.layerFS(c, "bin", "busybox")); err != nil || fi.Size() == 0 {
				t.Errorf("big base layer: /bin/busybox %v", err)
			}
			continue
		}
		for m := 1; m <= 3; m++ {
			p := d.layerFS(c, "big", fmt.Sprintf("layer%d", i), fmt.Sprintf("file%d.bin", m))
			fi, err := os.Stat(p)
			if err != nil || fi.Size() != 4<<20 {
				t.Errorf("big layer %d: %s: %v (size %v), want 4 MiB", i, p, err, sizeOf(fi))
			}
		}
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}
