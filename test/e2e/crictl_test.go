package e2e

import (
	"encoding/json"
	"github.com/berth-runtime/berth/images"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCrictlImageFlow drives the image commands an operator uses through the
// real crictl, so the daemon's answers are checked in the shape crictl
// prints them, not only as gRPC structs.
func TestCrictlImageFlow(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg))
	want := reg.Image("busybox")
	hexID := strings.TrimPrefix(want.ConfigDigest, "sha256:")

	out, err := d.crictl("pull", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, want.ConfigDigest) {
		t.Fatalf("crictl pull printed %q, want the image ID %s", out, want.ConfigDigest)
	}

	out, err = d.crictl("images")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "docker.io/library/busybox" && f[1] == "latest" {
			found = true
			if f[2] != hexID[:13] {
				t.Errorf("crictl images shows ID %q, want the short ID %q", f[2], hexID[:13])
			}
		}
	}
	if !found {
		t.Fatalf("crictl images does not list docker.io/library/busybox latest:\n%s", out)
	}

	out, err = d.crictl("inspecti", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	var inspect struct {
		Status struct {
			ID          string   `json:"id"`
			RepoTags    []string `json:"repoTags"`
			RepoDigests []string `json:"repoDigests"`
		} `json:"status"`
		Info struct {
			ManifestDigest string   `json:"manifestDigest"`
			ChainIDs       []string `json:"chainIDs"`
			ImageSpec      *struct {
				Architecture string `json:"architecture"`
				OS           string `json:"os"`
			} `json:"imageSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &inspect); err != nil {
		t.Fatalf("crictl inspecti output is not JSON: %v\n%s", err, out)
	}
	if inspect.Status.ID != want.ConfigDigest {
		t.Errorf("inspecti status.id %q, want the config digest %s", inspect.Status.ID, want.ConfigDigest)
	}
	if len(inspect.Status.RepoTags) != 1 || inspect.Status.RepoTags[0] != "docker.io/library/busybox:latest" {
		t.Errorf("inspecti repoTags %v", inspect.Status.RepoTags)
	}
	if inspect.Info.ManifestDigest != want.ManifestDigest {
		t.Errorf("inspecti info.manifestDigest %q, want %s", inspect.Info.ManifestDigest, want.ManifestDigest)
	}
	if got, wantChains := inspect.Info.ChainIDs, images.ChainIDs(want.DiffIDs); strings.Join(got, ",") != strings.Join(wantChains, ",") {
		t.Errorf("inspecti info.chainIDs %v, want %v", got, wantChains)
	}
	if inspect.Info.ImageSpec == nil || inspect.Info.ImageSpec.OS != "linux" || inspect.Info.ImageSpec.Architecture == "" {
		t.Errorf("inspecti verbose info lacks the image config:\n%s", out)
	}

	out, err = d.crictl("imagefsinfo")
	if err != nil {
		t.Fatal(err)
	}
	var fsinfo struct {
		Status struct {
			ImageFilesystems []struct {
				FsID struct {
					Mountpoint string `json:"mountpoint"`
				} `json:"fsId"`
				UsedBytes struct {
					Value json.Number `json:"value"`
				} `json:"usedBytes"`
				InodesUsed struct {
					Value json.Number `json:"value"`
				} `json:"inodesUsed"`
			} `json:"imageFilesystems"`
		} `json:"status"`
	}
	if err := unmarshalNumbers(out, &fsinfo); err != nil {
		t.Fatalf("crictl imagefsinfo output is not JSON: %v\n%s", err, out)
	}
	if len(fsinfo.Status.ImageFilesystems) != 1 {
		t.Fatalf("imagefsinfo: %d image filesystems, want 1:\n%s", len(fsinfo.Status.ImageFilesystems), out)
	}
	ifs := fsinfo.Status.ImageFilesystems[0]
	if used, _ := strconv.ParseUint(ifs.UsedBytes.Value.String(), 10, 64); used < uint64(want.Size) {
		t.Errorf("imagefsinfo usedBytes %s after pulling a %d-byte image", ifs.UsedBytes.Value, want.Size)
	}
	if inodes, _ := strconv.ParseUint(ifs.InodesUsed.Value.String(), 10, 64); inodes == 0 {
		t.Errorf("imagefsinfo inodesUsed %s after a pull", ifs.InodesUsed.Value)
	}
	if rel, err := filepath.Rel(d.root, ifs.FsID.Mountpoint); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		t.Errorf("imagefsinfo mountpoint %q is not under the root %s", ifs.FsID.Mountpoint, d.root)
	}

	if _, err := d.crictl("rmi", "busybox"); err != nil {
		t.Fatal(err)
	}
	out, err = d.crictl("images", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "" {
		t.Fatalf("crictl images -q after rmi: %q", out)
	}
	out, err = d.crictl("imagefsinfo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshalNumbers(out, &fsinfo); err != nil || len(fsinfo.Status.ImageFilesystems) != 1 {
		t.Fatalf("crictl imagefsinfo after rmi: %v\n%s", err, out)
	}
	if used, _ := strconv.ParseUint(fsinfo.Status.ImageFilesystems[0].UsedBytes.Value.String(), 10, 64); used >= uint64(want.Size) {
		t.Errorf("imagefsinfo usedBytes %d after removing the only image, want less than its %d bytes", used, want.Size)
	}

	// The short ID crictl shows names the image for rmi.
	if _, err := d.crictl("pull", "docker.io/library/busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.crictl("rmi", hexID[:13]); err != nil {
		t.Fatal(err)
	}
	if out, err := d.crictl("images", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("crictl images -q after rmi by short ID: %q %v", out, err)
	}
}

// unmarshalNumbers decodes JSON keeping numbers as json.Number: crictl
// prints 64-bit values as strings (protojson) and they may also be numbers.
func unmarshalNumbers(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	return dec.Decode(v)
}
