package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testregistry"
)

// downURL is a loopback address where nothing listens: connections to it
// are refused at once.
const downURL = "http://127.0.0.1:1"

func TestMirrorServesBeforeEndpoint(t *testing.T) {
	a := startRegistry(t, testregistryOptions())
	b := startRegistry(t, testregistryOptions())
	d := startDaemon(t, fmt.Sprintf("[registries.\"docker.io\"]\nmirrors = [%q]\nendpoint = %q\n", a.URL(), b.URL()))

	if id := d.mustPull("busybox"); id != a.Image("busybox").ConfigDigest {
		t.Fatalf("pull answered %s", id)
	}
	if a.Requests() == 0 || a.ManifestRequests() == 0 {
		t.Errorf("the mirror served %d manifests and %d blobs, want both > 0", a.ManifestRequests(), a.Requests())
	}
	if b.Requests() != 0 || b.ManifestRequests() != 0 {
		t.Errorf("the endpoint served %d manifests and %d blobs although the mirror had the image", b.ManifestRequests(), b.Requests())
	}
	// The image is recorded under the name that was asked for, not the
	// mirror's address.
	img := d.status("docker.io/library/busybox:latest")
	if img == nil || len(img.RepoTags) != 1 || img.RepoTags[0] != "docker.io/library/busybox:latest" {
		t.Fatalf("status: %+v", img)
	}
	for _, rd := range img.RepoDigests {
		if !strings.HasPrefix(rd, "docker.io/library/busybox@") {
			t.Errorf("repo digest %q does not name docker.io", rd)
		}
	}
}

func TestMirrorDownFallsBackToEndpoint(t *testing.T) {
	b := startRegistry(t, testregistryOptions())
	d := startDaemon(t, fmt.Sprintf("[registries.\"docker.io\"]\nmirrors = [%q]\nendpoint = %q\n", downURL, b.URL()))

	start := time.Now()
	if id := d.mustPull("busybox"); id != b.Image("busybox").ConfigDigest {
		t.Fatalf("pull answered %s", id)
	}
	if b.Requests() == 0 {
		t.Errorf("the endpoint served no blobs")
	}
	// A refused connection is not worth waiting for.
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("pull took %s with a mirror that refuses connections", el)
	}
}

func TestMirrorWithoutImageFallsBackToEndpoint(t *testing.T) {
	a := startRegistry(t, testregistry.Options{Images: []string{"multilayer"}})
	b := startRegistry(t, testregistryOptions())
	d := startDaemon(t, fmt.Sprintf("[registries.\"docker.io\"]\nmirrors = [%q]\nendpoint = %q\n", a.URL(), b.URL()))

	if id := d.mustPull("busybox"); id != b.Image("busybox").ConfigDigest {
		t.Fatalf("pull answered %s", id)
	}
	if a.Requests() != 0 {
		t.Errorf("the mirror served %d blobs for an image it lacks", a.Requests())
	}
	if b.Requests() == 0 {
		t.Errorf("the endpoint served no blobs")
	}
	// The mirror still serves what it has.
	if id := d.mustPull("docker.io/berth/multilayer:latest"); id != a.Image("multilayer").ConfigDigest {
		t.Fatalf("pull multilayer answered %s", id)
	}
	if a.Requests() == 0 {
		t.Errorf("multilayer was not fetched from the mirror")
	}
}

// TestPullFromLoopbackRegistryByAddress pulls a name whose registry part is
// the loopback registry itself, with no registries config for it.
func TestPullFromLoopbackRegistryByAddress(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, "")
	info := reg.Image("user")
	ref := reg.Ref("user") // 127.0.0.1:<port>/berth/user:latest

	if id := d.mustPull(ref); id != info.ConfigDigest {
		t.Fatalf("pull %s answered %s, want %s", ref, id, info.ConfigDigest)
	}
	img := d.status(ref)
	if img == nil || len(img.RepoTags) != 1 || img.RepoTags[0] != ref {
		t.Fatalf("status %s: %+v", ref, img)
	}
	if len(img.RepoDigests) != 1 || img.RepoDigests[0] != reg.DigestRef("user") {
		t.Errorf("repo digests %v, want %s", img.RepoDigests, reg.DigestRef("user"))
	}
	if img.Uid == nil || img.Uid.Value != 1000 {
		t.Errorf("uid %v, want 1000", img.Uid)
	}
	// By digest too.
	if id := d.mustPull(reg.DigestRef("user")); id != info.ConfigDigest {
		t.Fatalf("pull by digest answered %s", id)
	}
}

func TestPullErrorCodes(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := startDaemon(t, registryConfig(reg)+fmt.Sprintf("[registries.\"down.example\"]\nendpoint = %q\n", downURL))

	cases := []struct {
		name, image string
		code        codes.Code
		msg         string // the message must contain it
	}{
		{"missing repository", "docker.io/library/nope:latest", codes.NotFound, "nope"},
		{"missing tag", "docker.io/library/busybox:nope", codes.NotFound, "busybox"},
		{"missing digest", "docker.io/library/busybox@sha256:" + strings.Repeat("0", 64), codes.NotFound, ""},
		{"registry down", "down.example/library/busybox:latest", codes.Unavailable, "down.example"},
		{"empty name", "", codes.InvalidArgument, "image"},
		{"invalid name", "Not Valid", codes.InvalidArgument, "Not Valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.pull(c.image)
			if status.Code(err) != c.code {
				t.Fatalf("pull %q: %v (code %s), want %s", c.image, err, status.Code(err), c.code)
			}
			if !strings.Contains(status.Convert(err).Message(), c.msg) {
				t.Errorf("pull %q: message %q does not contain %q", c.image, status.Convert(err).Message(), c.msg)
			}
		})
	}
	// A missing ImageSpec is as invalid as an empty name.
	_, err := d.img.PullImage(d.ctx(), &runtimeapi.PullImageRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "image") {
		t.Errorf("pull without an image spec: %v", err)
	}
	// The other image RPCs check their name the same way.
	if _, err := d.img.ImageStatus(d.ctx(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{}}); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "image") {
		t.Errorf("ImageStatus with an empty name: %v", err)
	}
	if _, err := d.img.RemoveImage(d.ctx(), &runtimeapi.RemoveImageRequest{}); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "image") {
		t.Errorf("RemoveImage without an image spec: %v", err)
	}
	if got := d.list(); len(got) != 0 {
		t.Errorf("failed pulls left images: %+v", got)
	}
	if names := dirNames(t, d.imagesDir("tmp")); len(names) != 0 {
		t.Errorf("failed pulls left %v in tmp", names)
	}
}

func basicAuthConfig(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func TestPullBasicAuth(t *testing.T) {
	creds := &testregistry.Credentials{Username: "berth", Password: "s3cret"}
	reg := startRegistry(t, testregistry.Options{BasicAuth: creds})
	d := startDaemon(t, registryConfig(reg))
	want := reg.Image("busybox").ConfigDigest

	if _, err := d.pull("busybox"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull without credentials: %v, want Unauthenticated", err)
	}
	if _, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Username: "berth", Password: "wrong"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull with a wrong password: %v, want Unauthenticated", err)
	}
	if id, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Username: "berth", Password: "s3cret"}); err != nil || id != want {
		t.Fatalf("pull with username and password: %s %v", id, err)
	}
	// The manifest is fetched on every pull, so each form of credentials is
	// checked by the registry even though the content is stored.
	before := reg.ManifestRequests()
	if id, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Auth: basicAuthConfig("berth", "s3cret")}); err != nil || id != want {
		t.Fatalf("pull with auth: %s %v", id, err)
	}
	if reg.ManifestRequests() == before {
		t.Errorf("a repeated pull did not ask the registry for the manifest")
	}
	if _, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Auth: basicAuthConfig("berth", "bad")}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull with a wrong auth: %v, want Unauthenticated", err)
	}
	if _, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Auth: "%%%not base64"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("pull with an undecodable auth: %v, want InvalidArgument", err)
	}
	// Credentials of one call are not reused by the next.
	if _, err := d.pull("busybox"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull without credentials after pulls with them: %v, want Unauthenticated", err)
	}
}

// writeAuthFile writes the node auth file the harness config names, in
// Docker's config.json format.
func writeAuthFile(t *testing.T, d *daemon, registry, user, pass string) {
	t.Helper()
	data := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, registry, basicAuthConfig(user, pass))
	if err := os.WriteFile(filepath.Join(d.dir, "auth.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPullNodeAuthFile(t *testing.T) {
	creds := &testregistry.Credentials{Username: "node", Password: "n0de"}
	reg := startRegistry(t, testregistry.Options{BasicAuth: creds})
	d := newDaemon(t, registryConfig(reg))
	writeAuthFile(t, d, "docker.io", "node", "n0de")
	d.start()

	if id := d.mustPull("busybox"); id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("pull answered %s", id)
	}
	// Request credentials take precedence over the file's.
	if _, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Username: "node", Password: "wrong"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull with wrong request credentials: %v, want Unauthenticated", err)
	}
}

func TestPullAuthFileReloadedOnSIGHUP(t *testing.T) {
	creds := &testregistry.Credentials{Username: "node", Password: "n0de"}
	reg := startRegistry(t, testregistry.Options{BasicAuth: creds})
	d := startDaemon(t, registryConfig(reg))

	if _, err := d.pull("busybox"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull before the auth file exists: %v, want Unauthenticated", err)
	}
	writeAuthFile(t, d, "https://index.docker.io/v1/", "node", "n0de")
	// Not before SIGHUP: the file is read at start and on reload only.
	if _, err := d.pull("busybox"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull after writing the auth file, before SIGHUP: %v, want Unauthenticated", err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog("SIGHUP: reloaded", 10*time.Second)
	if id, err := d.pull("busybox"); err != nil || id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("pull after SIGHUP: %s %v", id, err)
	}
	// A broken auth file is refused on reload and the last good one stays.
	if err := os.WriteFile(filepath.Join(d.dir, "auth.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog("SIGHUP: registries not reloaded", 10*time.Second)
	if _, err := d.pull("busybox"); err != nil {
		t.Fatalf("pull after a rejected reload: %v", err)
	}
}

func TestPullBearerAuth(t *testing.T) {
	creds := &testregistry.Credentials{Username: "berth", Password: "t0ken"}
	reg := startRegistry(t, testregistry.Options{BearerAuth: creds})
	d := startDaemon(t, registryConfig(reg))

	if _, err := d.pull("busybox"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull without credentials: %v, want Unauthenticated", err)
	}
	if _, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Username: "berth", Password: "bad"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("pull with a wrong password: %v, want Unauthenticated", err)
	}
	id, err := d.pullAuth("busybox", &runtimeapi.AuthConfig{Username: "berth", Password: "t0ken"})
	if err != nil || id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("pull with credentials: %s %v", id, err)
	}
	if reg.TokenRequests() == 0 {
		t.Errorf("no token was issued")
	}
	if reg.Requests() == 0 {
		t.Errorf("no blob was served")
	}
}

// TestPullNoProgressTimeout stalls every blob mid-body for longer than the
// configured pull_progress_timeout: the pull must give up on its own, say
// why, and a later pull must work once the registry moves again.
func TestPullNoProgressTimeout(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := newDaemon(t, "")
	d.writeConfig("", "pull_progress_timeout = \"2s\"", registryConfig(reg))
	d.start()

	reg.SetDelay(60 * time.Second)
	start := time.Now()
	_, err := d.pull("busybox")
	elapsed := time.Since(start)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("stalled pull: %v (code %s), want DeadlineExceeded", err, status.Code(err))
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "no data received") {
		t.Errorf("stalled pull: message %q does not say no data was received", msg)
	}
	if elapsed > 15*time.Second {
		t.Errorf("stalled pull took %s with a 2s progress timeout", elapsed)
	}
	if elapsed < 2*time.Second {
		t.Errorf("stalled pull failed after %s, before the 2s progress timeout", elapsed)
	}
	if names := dirNames(t, d.imagesDir("tmp")); len(names) != 0 {
		t.Errorf("tmp after a timed-out pull: %v", names)
	}

	reg.SetDelay(0)
	if id := d.mustPull("busybox"); id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("pull after the stall ended answered %s", id)
	}
}

// TestRegistriesReloadedOnSIGHUP starts with docker.io pointed at an address
// where nothing listens, then points it at the registry and sends SIGHUP.
func TestRegistriesReloadedOnSIGHUP(t *testing.T) {
	reg := startRegistry(t, testregistryOptions())
	d := newDaemon(t, fmt.Sprintf("[registries.\"docker.io\"]\nendpoint = %q\n", downURL))
	d.start()
	if _, err := d.pull("busybox"); status.Code(err) != codes.Unavailable {
		t.Fatalf("pull from the down endpoint: %v, want Unavailable", err)
	}
	d.writeConfig("", "", registryConfig(reg))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog("SIGHUP: reloaded", 10*time.Second)
	if id, err := d.pull("busybox"); err != nil || id != reg.Image("busybox").ConfigDigest {
		t.Fatalf("pull after SIGHUP: %s %v", id, err)
	}
	// A config that no longer parses is refused on SIGHUP; berthd keeps
	// serving with the last good one.
	if err := os.WriteFile(d.config, []byte("lgo_level = \"debug\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog("SIGHUP: config not reloaded", 10*time.Second)
	d.remove("busybox")
	if _, err := d.pull("busybox"); err != nil {
		t.Fatalf("pull after a refused reload: %v", err)
	}
}
