package e2e

import (
	"github.com/berth-runtime/berth/images"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testregistry"
)

// waitStatus waits until name resolves to an image and returns it.
func waitStatus(t *testing.T, d *daemon, name string, timeout time.Duration) {
	t.Helper()
	if !waitUntil(timeout, func() bool { return d.status(name) != nil }) {
		var lines []string
		for _, l := range strings.Split(d.log(), "\n") {
			if strings.Contains(l, "import") {
				lines = append(lines, l)
			}
		}
		t.Fatalf("%s was not imported within %s; import log lines:\n%s", name, timeout, strings.Join(lines, "\n"))
	}
}

// TestImportDirWatched drops a `docker save` archive into the import
// directory of a running berthd and waits for the image to appear.
func TestImportDirWatched(t *testing.T) {
	d := startDaemon(t, "")
	cat, err := testregistry.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	want := cat["user"]

	path := filepath.Join(d.root, "import", "x.tar")
	if err := testregistry.WriteDockerArchive(path, "user", "docker.io/library/imported:v1"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, d, "imported:v1", 10*time.Second)
	img := d.status("imported:v1")
	if img.Id != want.ConfigDigest {
		t.Fatalf("imported ID %s, want %s", img.Id, want.ConfigDigest)
	}
	if !slices.Equal(img.RepoTags, []string{"docker.io/library/imported:v1"}) {
		t.Errorf("imported tags %v", img.RepoTags)
	}
	if img.Uid == nil || img.Uid.Value != 1000 {
		t.Errorf("imported uid %v, want 1000", img.Uid)
	}
	for _, c := range images.ChainIDs(want.DiffIDs) {
		checkLayerMeta(t, d, c)
	}
	if fi, err := os.Stat(d.layerFS(images.ChainIDs(want.DiffIDs)[0], "bin", "busybox")); err != nil || fi.Size() == 0 {
		t.Errorf("imported layer not unpacked: %v", err)
	}
	if names := dirNames(t, d.imagesDir("tmp")); len(names) != 0 {
		t.Errorf("tmp after an import: %v", names)
	}
}

// TestImportCommand imports an OCI layout archive of a multi-arch image
// through `berthd image import`.
func TestImportCommand(t *testing.T) {
	d := startDaemon(t, "")
	cat, err := testregistry.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	want := cat["multiarch"]

	archive := filepath.Join(d.dir, "oci.tar")
	if err := testregistry.WriteOCIArchive(archive, "multiarch", "docker.io/berth/oci-imported:v2"); err != nil {
		t.Fatal(err)
	}
	res := runBerthd(t, time.Minute, "image", "import", "--socket", d.socket, archive)
	if res.code != 0 {
		t.Fatalf("berthd image import exited %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, want.ConfigDigest) {
		t.Errorf("berthd image import printed %q, want the ID %s", res.stdout, want.ConfigDigest)
	}
	if !strings.Contains(res.stdout, "docker.io/berth/oci-imported:v2") {
		t.Errorf("berthd image import printed %q, want the tag", res.stdout)
	}
	list := d.list()
	if len(list) != 1 || list[0].Id != want.ConfigDigest || !slices.Equal(list[0].RepoTags, []string{"docker.io/berth/oci-imported:v2"}) {
		t.Fatalf("list after import: %+v", list)
	}
	chains := images.ChainIDs(want.DiffIDs)
	data, err := os.ReadFile(d.layerFS(chains[len(chains)-1], "arch"))
	if err != nil || !strings.HasPrefix(string(data), runtime.GOARCH) {
		t.Errorf("imported /arch %q %v, want the native platform", data, err)
	}

	// A missing file is an error of the command, not of the daemon.
	res = runBerthd(t, time.Minute, "image", "import", "--socket", d.socket, filepath.Join(d.dir, "missing.tar"))
	if res.code == 0 {
		t.Errorf("berthd image import of a missing file exited 0")
	}
}

// TestImportAtStart starts berthd with an archive already in the import
// directory, as an air-gapped node is provisioned.
func TestImportAtStart(t *testing.T) {
	d := newDaemon(t, "")
	cat, err := testregistry.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(d.root, "import")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.tar")
	if err := testregistry.WriteDockerArchive(old, "username", "docker.io/library/old:v1"); err != nil {
		t.Fatal(err)
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	d.start()

	waitStatus(t, d, "old:v1", 10*time.Second)
	if img := d.status("old:v1"); img.Id != cat["username"].ConfigDigest || img.Username != "berth" {
		t.Errorf("old:v1: %+v", img)
	}

	// An archive is imported once: after a restart, a removed image is not
	// brought back by the unchanged archive.
	d.remove("old:v1")
	d.stop()
	d.start()
	time.Sleep(2 * time.Second) // longer than the import settle time
	if img := d.status("old:v1"); img != nil {
		t.Errorf("the unchanged archive was imported again after a restart: %+v", img)
	}
}

// TestImportAtStartFreshArchive starts berthd right after an archive was
// written into the import directory, as a provisioning script that copies
// the archive and then starts the service does. The archive is younger
// than the settle time when berthd first scans the directory, and no
// further event arrives for it; it must still be imported.
func TestImportAtStartFreshArchive(t *testing.T) {
	d := newDaemon(t, "")
	cat, err := testregistry.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(d.root, "import")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testregistry.WriteOCIArchive(filepath.Join(dir, "fresh.tar"), "busybox", "docker.io/library/fresh:v1"); err != nil {
		t.Fatal(err)
	}
	d.start()
	waitStatus(t, d, "fresh:v1", 10*time.Second)
	if img := d.status("fresh:v1"); img.Id != cat["busybox"].ConfigDigest {
		t.Errorf("fresh:v1: %+v", img)
	}
}

// TestImportGarbage puts files that are not image archives into the import
// directory: berthd keeps serving and imports nothing.
func TestImportGarbage(t *testing.T) {
	d := startDaemon(t, "")
	dir := filepath.Join(d.root, "import")
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i*7 + i/13)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.tar"), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.tar"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.waitLog("import junk.tar", 10*time.Second)
	d.waitLog("import empty.tar", 10*time.Second)

	if _, err := d.rt.Version(d.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("Version after importing garbage: %v", err)
	}
	if got := d.list(); len(got) != 0 {
		t.Errorf("garbage imported as %+v", got)
	}
	if names := dirNames(t, d.imagesDir("tmp")); len(names) != 0 {
		t.Errorf("tmp after a failed import: %v", names)
	}
	// A good archive afterwards still imports.
	if err := testregistry.WriteDockerArchive(filepath.Join(dir, "good.tar"), "busybox", "docker.io/library/good:v1"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, d, "good:v1", 10*time.Second)
}
