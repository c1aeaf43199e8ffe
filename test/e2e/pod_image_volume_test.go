package e2e

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestImageVolume mounts an image into a container (Mount.image): its
// merged layers are visible read-only, a sub path mounts one directory of
// it, the status names the image's ID, and removal leaves no mount.
func TestImageVolume(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	volName := p.imageName("multilayer")
	volID := p.mustPull(volName)
	podCfg := p.podConfig("image-volume")
	pod := p.runPod(podCfg)

	cfg := ctrConfig("reader", "busybox", "sleep", "3600")
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/mnt/image", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volName}},
		{ContainerPath: "/mnt/data", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volName}, ImageSubPath: "data"},
	}
	id := p.runCtr(pod, podCfg, cfg)

	// The merged view of the layers: the whiteouts of the top layer hold.
	res, err := p.execSync(id, 10, "sh", "-c", "cat /mnt/image/data/b.txt /mnt/image/opq/new.txt; ls /mnt/image/data; ls /mnt/image/opq; ls /mnt/data; /mnt/image/bin/busybox true && echo ran")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Stdout), "b\nnew\nb.txt\nnew.txt\nb.txt\nran\n"; got != want {
		t.Errorf("image volume content:\n%s\nwant:\n%s(stderr %s)", got, want, res.Stderr)
	}
	for _, path := range []string{"/mnt/image/new-file", "/mnt/data/new-file"} {
		res, err := p.execSync(id, 10, "sh", "-c", "echo x > "+path)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode == 0 || !strings.Contains(string(res.Stderr), "Read-only file system") {
			t.Errorf("touch %s: exit %d, stderr %q; want a read-only file system", path, res.ExitCode, res.Stderr)
		}
	}

	st := p.ctrStatus(id)
	found := 0
	for _, m := range st.GetMounts() {
		if m.GetImage() != nil {
			found++
			if m.GetImage().GetImageRef() != volID {
				t.Errorf("mount %s reports image_ref %q, want %q", m.GetContainerPath(), m.GetImage().GetImageRef(), volID)
			}
		}
	}
	if found != 2 {
		t.Errorf("status lists %d image volumes, want 2: %v", found, st.GetMounts())
	}

	// Refusals: writable, a sub path that is not there or leaves the
	// image, an image not pulled. Each leaves nothing mounted.
	for _, tc := range []struct {
		mount *runtimeapi.Mount
		code  codes.Code
		field string
	}{
		{&runtimeapi.Mount{ContainerPath: "/mnt/x", Image: &runtimeapi.ImageSpec{Image: volName}}, codes.InvalidArgument, "mounts[0].readonly"},
		{&runtimeapi.Mount{ContainerPath: "/mnt/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volName}, ImageSubPath: "no/such/dir"}, codes.InvalidArgument, "mounts[0].image_sub_path"},
		{&runtimeapi.Mount{ContainerPath: "/mnt/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volName}, ImageSubPath: "../../etc"}, codes.InvalidArgument, "mounts[0].image_sub_path"},
		{&runtimeapi.Mount{ContainerPath: "/mnt/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "docker.io/berth/never-pulled:1"}}, codes.NotFound, "mounts[0].image.image"},
	} {
		bad := ctrConfig("bad-"+tc.field, "busybox", "true")
		bad.Metadata.Name = "bad"
		bad.Mounts = []*runtimeapi.Mount{tc.mount}
		_, err := p.rt.CreateContainer(p.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: bad, SandboxConfig: podCfg})
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("CreateContainer with %v: %v; want %s naming %s", tc.mount, err, tc.code, tc.field)
		}
	}

	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.RemoveContainer(p.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(p.state); len(left) > 0 {
		for _, m := range left {
			if !strings.Contains(m, "/pods/") {
				t.Errorf("mount left after RemoveContainer: %s", m)
			}
		}
	}
}
