package testregistry

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The CRI conformance suite (critest, sigs.k8s.io/cri-tools v1.37.0) pulls
// its images from three registries. Each image below is rebuilt from what
// cri-tools' images/ directory and its specs say it must hold; a berthd
// whose [registries."<host>"] endpoints all name one Registry pulls them
// under the very names critest uses. Repository paths do not collide
// across the hosts, and k8s.gcr.io/pause is meant to be the same image as
// registry.k8s.io/pause.
//
// Not rebuilt: gcr.io/k8s-staging-cri-tools/test-image-digest, which critest
// names by a fixed upstream digest that no rebuilt image can have.
var CritestHosts = []string{"gcr.io", "registry.k8s.io", "k8s.gcr.io"}

// CritestTools are the binaries critest's images are made of.
type CritestTools struct {
	// Busybox is a static busybox with the applets critest runs that
	// Debian's busybox-static lacks (pgrep, ipcs, adduser, ...):
	// hack/build-busybox.sh builds it.
	Busybox []byte
	// Applets are the names busybox --list prints; each becomes a link in
	// /bin, as in the busybox image critest's images start from.
	Applets []string
	// WebServer is test/cmd/critest-webserver, built statically: the nginx
	// and httpd of the images.
	WebServer []byte
	// NoNewPrivs is test/cmd/critest-nnp, built statically: the setuid
	// helper of the NoNewPrivs specs.
	NoNewPrivs []byte
}

// LoadCritestTools reads the three binaries and asks busybox for its
// applets.
func LoadCritestTools(busybox, webServer, noNewPrivs string) (CritestTools, error) {
	var t CritestTools
	var err error
	if t.Busybox, err = os.ReadFile(busybox); err != nil {
		return t, fmt.Errorf("testregistry: critest busybox (hack/build-busybox.sh builds it): %w", err)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return t, fmt.Errorf("testregistry: %s --list: %w", busybox, err)
	}
	t.Applets = strings.Fields(string(out))
	if t.WebServer, err = os.ReadFile(webServer); err != nil {
		return t, fmt.Errorf("testregistry: critest web server: %w", err)
	}
	if t.NoNewPrivs, err = os.ReadFile(noNewPrivs); err != nil {
		return t, fmt.Errorf("testregistry: critest nonewprivs helper: %w", err)
	}
	return t, nil
}

// The accounts of the busybox image cri-tools' images are built FROM
// (busybox:1.37.0): www-data is uid 33, nobody 65534.
const (
	critestPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\n" +
		"sync:x:4:100:sync:/bin:/bin/sync\n" +
		"mail:x:8:8:mail:/var/spool/mail:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
		"operator:x:37:37:Operator:/var:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/home:/bin/false\n"
	critestGroup = "root:x:0:\n" +
		"daemon:x:1:\n" +
		"bin:x:2:\n" +
		"sys:x:3:\n" +
		"adm:x:4:\n" +
		"tty:x:5:\n" +
		"disk:x:6:\n" +
		"lp:x:7:\n" +
		"mail:x:8:\n" +
		"kmem:x:9:\n" +
		"wheel:x:10:root\n" +
		"cdrom:x:11:\n" +
		"dialout:x:18:\n" +
		"floppy:x:19:\n" +
		"video:x:28:\n" +
		"audio:x:29:\n" +
		"tape:x:32:\n" +
		"www-data:x:33:\n" +
		"operator:x:37:\n" +
		"utmp:x:43:\n" +
		"plugdev:x:46:\n" +
		"staff:x:50:\n" +
		"lock:x:54:\n" +
		"netdev:x:82:\n" +
		"users:x:100:\n" +
		"nogroup:x:65534:\n"
)

// critestBase is the rootfs every critest image starts from: busybox with
// all its applets in /bin, the accounts above, and the usual directories
// (/var/run for nginx's PID file among them). The applets are hard links,
// as in the busybox image: the MaskedPaths spec masks /bin/ls and expects
// sh to keep working, which a symlink (masking busybox itself) breaks.
//
// The entries are in the order the layer holds them: sorted, except that
// busybox comes right after /bin, since a hard link must follow its
// target.
func critestBase(t CritestTools) []fileEntry {
	es := []fileEntry{
		dir("dev", 0o755),
		dir("etc", 0o755),
		file("etc/group", 0o644, []byte(critestGroup)),
		file("etc/passwd", 0o644, []byte(critestPasswd)),
		dir("home", 0o755),
		dir("proc", 0o555),
		dir("root", 0o700),
		dir("sys", 0o555),
		dir("tmp", 0o1777),
		dir("usr", 0o755),
		dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755),
		dir("usr/sbin", 0o755),
		dir("var", 0o755),
		dir("var/run", 0o755),
		dir("var/www", 0o755),
	}
	for _, a := range t.Applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		es = append(es, hardlink("bin/"+a, "bin/busybox"))
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].name < es[j].name })
	return append([]fileEntry{dir("bin", 0o755), file("bin/busybox", 0o755, t.Busybox)}, es...)
}

func hardlink(name, target string) fileEntry {
	return fileEntry{name: name, typ: tar.TypeLink, mode: 0o755, link: target}
}

// critestPredefinedGroup is what `adduser -u 1000 -D default-user &&
// addgroup -g 50000 group-defined-in-image && addgroup default-user
// group-defined-in-image` adds to the base (images/image-predefined-group).
func critestPredefinedGroup() []fileEntry {
	home := dir("home/default-user", 0o755)
	home.uid, home.gid = 1000, 1000
	return []fileEntry{
		dir("etc", 0o755),
		file("etc/group", 0o644, []byte(critestGroup+
			"default-user:x:1000:\n"+
			"group-defined-in-image:x:50000:default-user\n")),
		file("etc/passwd", 0o644, []byte(critestPasswd+
			"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n")),
		dir("home", 0o755),
		home,
	}
}

// Commands of the web server images. nginx writes its PID file and shows
// "nginx: master process" as its command line, as the real one does;
// hostnet-nginx listens on 12003 because it shares the node's network.
const (
	critestNginx = "/usr/sbin/nginx"
	critestHttpd = "/usr/local/apache2/bin/httpd"
	critestNNP   = "/usr/local/bin/nnp"
)

func critestNginxCmd(port string) []string {
	return []string{critestNginx, "-name", "nginx", "-port", port,
		"-pidfile", "/var/run/nginx.pid", "-title", "nginx: master process nginx -g daemon off;"}
}

// critestImage is one image and every name critest pulls it by.
type critestImage struct {
	refs   []string // "<host>/<repo>:<tag>"
	user   string
	cmd    []string
	layers []string // keys of the layers built in buildCritest, after the base
}

func critestImages() []critestImage {
	const (
		e2e   = "registry.k8s.io/e2e-test-images/"
		tools = "gcr.io/k8s-staging-cri-tools/"
	)
	return []critestImage{
		// framework.DefaultLinuxContainerImage: most specs run it.
		{refs: []string{e2e + "busybox:1.29-2"}, cmd: []string{"sh"}},
		{refs: []string{e2e + "nginx:1.14-2"}, cmd: critestNginxCmd("80"), layers: []string{"nginx"}},
		{refs: []string{e2e + "httpd:2.4.39-4"}, cmd: []string{critestHttpd, "-name", "httpd", "-port", "80"}, layers: []string{"httpd"}},
		{refs: []string{e2e + "nonewprivs:1.3"}, cmd: []string{critestNNP}, layers: []string{"nnp"}},
		{refs: []string{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"}, cmd: pauseCmd},
		{refs: []string{tools + "hostnet-nginx-" + runtime.GOARCH + ":latest"}, cmd: critestNginxCmd("12003"), layers: []string{"nginx"}},

		// images/image-user, one per USER.
		{refs: []string{tools + "test-image-user-uid:latest"}, user: "1002", cmd: []string{"sh"}},
		{refs: []string{tools + "test-image-user-username:latest"}, user: "www-data", cmd: []string{"sh"}},
		{refs: []string{tools + "test-image-user-uid-group:latest"}, user: "1003:1004", cmd: []string{"sh"}},
		{refs: []string{tools + "test-image-user-username-group:latest"}, user: "www-data:1004", cmd: []string{"sh"}},
		{refs: []string{tools + "test-image-predefined-group:latest"}, user: "1000", cmd: []string{"sh"}, layers: []string{"predefined-group"}},

		// images/image-test: the base plus an empty file named after the
		// image, so that each has an ID of its own; the tags of
		// test-image-tags share one image (file same-image), as do those
		// of test-image-tag.
		{refs: []string{tools + "test-image-latest:latest"}, cmd: []string{"sh"}, layers: []string{"file:test-image-latest"}},
		{refs: []string{tools + "test-image-tag:test", tools + "test-image-tag:all"}, cmd: []string{"sh"}, layers: []string{"file:test-image-tag"}},
		{refs: []string{tools + "test-image-1:latest"}, cmd: []string{"sh"}, layers: []string{"file:test-image-1"}},
		{refs: []string{tools + "test-image-2:latest"}, cmd: []string{"sh"}, layers: []string{"file:test-image-2"}},
		{refs: []string{tools + "test-image-3:latest"}, cmd: []string{"sh"}, layers: []string{"file:test-image-3"}},
		{refs: []string{tools + "test-image-tags:1", tools + "test-image-tags:2", tools + "test-image-tags:3"},
			cmd: []string{"sh"}, layers: []string{"file:same-image"}},
	}
}

// CritestRefs lists every name critest pulls that PushCritest serves,
// "<host>/<repo>:<tag>".
func CritestRefs() []string {
	var out []string
	for _, im := range critestImages() {
		out = append(out, im.refs...)
	}
	return out
}

// critestLayer builds one of the layers critestImages names.
func critestLayer(key string, t CritestTools) ([]fileEntry, error) {
	if name, ok := strings.CutPrefix(key, "file:"); ok {
		return []fileEntry{file(name, 0o644, nil)}, nil
	}
	switch key {
	case "nginx":
		return []fileEntry{dir("usr", 0o755), dir("usr/sbin", 0o755),
			file(strings.TrimPrefix(critestNginx, "/"), 0o755, t.WebServer)}, nil
	case "httpd":
		return []fileEntry{dir("usr", 0o755), dir("usr/local", 0o755), dir("usr/local/apache2", 0o755),
			dir("usr/local/apache2/bin", 0o755), file(strings.TrimPrefix(critestHttpd, "/"), 0o755, t.WebServer)}, nil
	case "nnp":
		// Setuid root: the point of the NoNewPrivs specs.
		return []fileEntry{dir("usr", 0o755), dir("usr/local", 0o755), dir("usr/local/bin", 0o755),
			file(strings.TrimPrefix(critestNNP, "/"), 0o4755, t.NoNewPrivs)}, nil
	case "predefined-group":
		return critestPredefinedGroup(), nil
	}
	return nil, fmt.Errorf("testregistry: no critest layer %q", key)
}

// splitRef splits "<host>/<repo>:<tag>" into the repository path inside a
// registry and the tag.
func splitRef(ref string) (repo, tag string, err error) {
	_, rest, ok := strings.Cut(ref, "/")
	i := strings.LastIndex(rest, ":")
	if !ok || i <= 0 || strings.Contains(rest[i:], "/") {
		return "", "", fmt.Errorf("testregistry: critest reference %q is not host/repo:tag", ref)
	}
	return rest[:i], rest[i+1:], nil
}

// PushCritest builds critest's images from t and pushes each under every
// name critest pulls it by (the path and tag; the host is whichever
// registry's endpoint names r). It returns those names.
func (r *Registry) PushCritest(t CritestTools) ([]string, error) {
	mk := func(es []fileEntry, sorted bool) (*memLayer, error) {
		tb, err := buildTar(es, sorted)
		if err != nil {
			return nil, err
		}
		return newLayer(tb, compGzip, false)
	}
	base, err := mk(critestBase(t), false)
	if err != nil {
		return nil, fmt.Errorf("testregistry: critest base layer: %w", err)
	}
	layers := map[string]*memLayer{}
	native := nativePlatform()
	var pushed []string
	for _, im := range critestImages() {
		spec := imageSpec{plat: native, user: im.user, cmd: im.cmd,
			layers: []layerSpec{{base, "busybox rootfs (defconfig)"}}}
		for _, key := range im.layers {
			l, ok := layers[key]
			if !ok {
				es, err := critestLayer(key, t)
				if err != nil {
					return nil, err
				}
				if l, err = mk(es, true); err != nil {
					return nil, fmt.Errorf("testregistry: critest layer %s: %w", key, err)
				}
				layers[key] = l
			}
			spec.layers = append(spec.layers, layerSpec{l, "add " + key})
		}
		img, err := makeImage(spec)
		if err != nil {
			return nil, fmt.Errorf("testregistry: critest image %s: %w", im.refs[0], err)
		}
		for _, ref := range im.refs {
			if err := r.pushImage(img, ref); err != nil {
				return nil, err
			}
			pushed = append(pushed, ref)
		}
	}
	return pushed, nil
}

func (r *Registry) pushImage(img v1.Image, ref string) error {
	repo, tag, err := splitRef(ref)
	if err != nil {
		return err
	}
	return r.push(&entry{img: img, info: ImageInfo{Name: ref}}, repo, tag)
}
