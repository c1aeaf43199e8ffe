package testregistry

import (
	"archive/tar"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fakeCritestTools stands in for the real binaries: the tests look at
// where the bytes land and with what mode, not at what they do.
func fakeCritestTools() CritestTools {
	return CritestTools{
		Busybox:    []byte("busybox binary"),
		Applets:    []string{"busybox", "sh", "pgrep", "ipcs", "adduser", "id"},
		WebServer:  []byte("web server binary"),
		NoNewPrivs: []byte("nnp binary"),
	}
}

// pullCritest pushes critest's images and pulls every name back through the
// registry's HTTP API, keyed by "<host>/<repo>:<tag>".
func pullCritest(t *testing.T) map[string]v1.Image {
	t.Helper()
	r := start(t, Options{Images: []string{}})
	pushed, err := r.PushCritest(fakeCritestTools())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(pushed, " "), strings.Join(CritestRefs(), " "); got != want {
		t.Fatalf("pushed %s\nwant %s", got, want)
	}
	imgs := map[string]v1.Image{}
	for _, ref := range pushed {
		repo, tag, err := splitRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		imgs[ref] = pull(t, r.Addr()+"/"+repo+":"+tag)
	}
	return imgs
}

// flatFiles is the image's rootfs as the layers stack up (no whiteouts are
// used by these images): path -> header, with the content of regular files.
func flatFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	hdrs, files := map[string]*tar.Header{}, map[string]string{}
	for _, l := range ls {
		hs, fs := tarEntries(t, l)
		for _, h := range hs {
			hdrs[strings.TrimSuffix(h.Name, "/")] = h
		}
		for k, v := range fs {
			files[k] = v
		}
	}
	return hdrs, files
}

func configOf(t *testing.T, img v1.Image) v1.Config {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Config
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestCritestNamesAndIDs(t *testing.T) {
	imgs := pullCritest(t)
	const tools = "gcr.io/k8s-staging-cri-tools/"

	// Tags critest expects to be one image are one image; images it
	// expects to differ differ.
	same := [][]string{
		{tools + "test-image-tags:1", tools + "test-image-tags:2", tools + "test-image-tags:3"},
		{tools + "test-image-tag:test", tools + "test-image-tag:all"},
		{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"},
	}
	for _, g := range same {
		for _, ref := range g[1:] {
			if digestOf(t, imgs[ref]) != digestOf(t, imgs[g[0]]) {
				t.Errorf("%s and %s have different image IDs", ref, g[0])
			}
		}
	}
	seen := map[string]string{}
	for _, ref := range []string{tools + "test-image-1:latest", tools + "test-image-2:latest",
		tools + "test-image-3:latest", tools + "test-image-latest:latest", tools + "test-image-tag:test",
		tools + "test-image-tags:1", "registry.k8s.io/e2e-test-images/busybox:1.29-2"} {
		d := digestOf(t, imgs[ref])
		if other, ok := seen[d]; ok {
			t.Errorf("%s and %s share image ID %s", ref, other, d)
		}
		seen[d] = ref
	}
}

func TestCritestUsers(t *testing.T) {
	imgs := pullCritest(t)
	const tools = "gcr.io/k8s-staging-cri-tools/"
	for ref, want := range map[string]string{
		tools + "test-image-user-uid:latest":             "1002",
		tools + "test-image-user-username:latest":        "www-data",
		tools + "test-image-user-uid-group:latest":       "1003:1004",
		tools + "test-image-user-username-group:latest":  "www-data:1004",
		tools + "test-image-predefined-group:latest":     "1000",
		"registry.k8s.io/e2e-test-images/busybox:1.29-2": "",
	} {
		if got := configOf(t, imgs[ref]).User; got != want {
			t.Errorf("%s: User %q, want %q", ref, got, want)
		}
	}

	_, files := flatFiles(t, imgs[tools+"test-image-user-username:latest"])
	if !strings.Contains(files["etc/passwd"], "\nwww-data:x:33:33:") {
		t.Errorf("www-data is not uid 33 in /etc/passwd:\n%s", files["etc/passwd"])
	}

	hdrs, files := flatFiles(t, imgs[tools+"test-image-predefined-group:latest"])
	if !strings.Contains(files["etc/passwd"], "\ndefault-user:x:1000:1000:") {
		t.Errorf("no default-user 1000:1000 in /etc/passwd:\n%s", files["etc/passwd"])
	}
	if !strings.Contains(files["etc/group"], "\ngroup-defined-in-image:x:50000:default-user\n") {
		t.Errorf("default-user is not in group 50000 in /etc/group:\n%s", files["etc/group"])
	}
	if h := hdrs["home/default-user"]; h == nil || h.Uid != 1000 || h.Gid != 1000 {
		t.Errorf("home/default-user: %+v, want a directory owned by 1000:1000", h)
	}
}

func TestCritestRootfs(t *testing.T) {
	imgs := pullCritest(t)
	hdrs, files := flatFiles(t, imgs["registry.k8s.io/e2e-test-images/busybox:1.29-2"])
	if files["bin/busybox"] != "busybox binary" {
		t.Errorf("bin/busybox holds %q", files["bin/busybox"])
	}
	for _, a := range []string{"sh", "pgrep", "ipcs", "adduser", "id"} {
		if h := hdrs["bin/"+a]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "bin/busybox" {
			t.Errorf("bin/%s: %+v, want a hard link to bin/busybox", a, h)
		}
	}
	if h := hdrs["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg {
		t.Errorf("bin/busybox: %+v, want the binary itself", h)
	}
	if h := hdrs["var/run"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("no /var/run for nginx's PID file")
	}

	hdrs, files = flatFiles(t, imgs["registry.k8s.io/e2e-test-images/nonewprivs:1.3"])
	h := hdrs["usr/local/bin/nnp"]
	if h == nil || h.Mode&0o4000 == 0 || h.Uid != 0 || files["usr/local/bin/nnp"] != "nnp binary" {
		t.Errorf("usr/local/bin/nnp: %+v, want the helper, setuid root", h)
	}
	if got := configOf(t, imgs["registry.k8s.io/e2e-test-images/nonewprivs:1.3"]).Cmd; strings.Join(got, " ") != "/usr/local/bin/nnp" {
		t.Errorf("nonewprivs Cmd %q", got)
	}
}

// An extractor can only make a hard link to a file it has already written,
// and only in a directory it has already made.
func TestCritestBaseOrder(t *testing.T) {
	imgs := pullCritest(t)
	ls, err := imgs["registry.k8s.io/e2e-test-images/busybox:1.29-2"].Layers()
	if err != nil {
		t.Fatal(err)
	}
	hdrs, _ := tarEntries(t, ls[0])
	seen := map[string]bool{"": true}
	for _, h := range hdrs {
		name := strings.TrimSuffix(h.Name, "/")
		parent := ""
		if i := strings.LastIndex(name, "/"); i >= 0 {
			parent = name[:i]
		}
		if !seen[parent] {
			t.Errorf("%s comes before its directory %s", name, parent)
		}
		if h.Typeflag == tar.TypeLink && !seen[h.Linkname] {
			t.Errorf("hard link %s comes before its target %s", name, h.Linkname)
		}
		seen[name] = true
	}
}

func TestCritestWebServers(t *testing.T) {
	imgs := pullCritest(t)
	for ref, port := range map[string]string{
		"registry.k8s.io/e2e-test-images/nginx:1.14-2":                             "80",
		"registry.k8s.io/e2e-test-images/httpd:2.4.39-4":                           "80",
		"gcr.io/k8s-staging-cri-tools/hostnet-nginx-" + runtime.GOARCH + ":latest": "12003",
	} {
		cmd := configOf(t, imgs[ref]).Cmd
		_, files := flatFiles(t, imgs[ref])
		if len(cmd) == 0 || files[strings.TrimPrefix(cmd[0], "/")] != "web server binary" {
			t.Errorf("%s: Cmd %q does not run the web server", ref, cmd)
			continue
		}
		if !strings.Contains(strings.Join(cmd, " "), "-port "+port) {
			t.Errorf("%s: Cmd %q does not listen on %s", ref, cmd, port)
		}
		if strings.Contains(ref, "nginx") && !strings.Contains(strings.Join(cmd, " "), "-pidfile /var/run/nginx.pid -title nginx: master process") {
			t.Errorf("%s: Cmd %q lacks nginx's PID file or title", ref, cmd)
		}
	}
}

func TestCritestBaseShared(t *testing.T) {
	// Every image starts from the same base layer, so a runtime stores
	// busybox once.
	imgs := pullCritest(t)
	var base v1.Hash
	for ref, img := range imgs {
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		d, err := ls[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		if base == (v1.Hash{}) {
			base = d
		} else if d != base {
			t.Errorf("%s starts from %s, others from %s", ref, d, base)
		}
	}
}

func TestSplitRef(t *testing.T) {
	for in, want := range map[string][2]string{
		"gcr.io/a/b:c":              {"a/b", "c"},
		"registry.k8s.io/pause:3.9": {"pause", "3.9"},
		"localhost:5000/x/y:latest": {"x/y", "latest"},
	} {
		repo, tag, err := splitRef(in)
		if err != nil || repo != want[0] || tag != want[1] {
			t.Errorf("splitRef(%q) = %q, %q, %v; want %q, %q", in, repo, tag, err, want[0], want[1])
		}
	}
	for _, bad := range []string{"nohost", "gcr.io/noTag", "gcr.io/a:b/c"} {
		if _, _, err := splitRef(bad); err == nil {
			t.Errorf("splitRef(%q) accepted", bad)
		}
	}
}
