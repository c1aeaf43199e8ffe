//go:build runc

package spec

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRuncRuns runs generated specs with the runc binary, as root, in a
// throwaway busybox root filesystem: the end-to-end proof that the kernel
// takes what the spec asks. The pod's namespaces are not pinned here, so
// the container gets new ones. Run with: go test -tags runc -run Runc
func TestRuncRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc binary")
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("no static /bin/busybox")
	}

	for _, tc := range []struct {
		name   string
		script string
		mod    func(in *Input)
		want   []string
	}{
		{
			name:   "kubelet busybox as user 1000",
			script: "id; hostname; echo $HOSTNAME; ulimit -n; grep CapBnd /proc/self/status; cat /proc/self/oom_score_adj; cat /run/sa/token; (echo x > /proc/sysrq-trigger) 2>/dev/null || echo sysrq-ro; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
			mod: func(in *Input) {
				sc := in.Container.Linux.SecurityContext
				sc.RunAsUser, sc.RunAsGroup, sc.SupplementalGroups = int64v(1000), int64v(3000), []int64{4000}
			},
			want: []string{
				"uid=1000(user-defined-in-image) gid=3000 groups=10(wheel),3000,4000,50000(group-defined-in-image)\n" +
					"busybox\nbusybox\n20000\nCapBnd:\t00000000a80425fb\n0\ntoken\nsysrq-ro\n0\n",
			},
		},
		{
			name:   "privileged",
			script: "grep CapBnd /proc/self/status; ls /dev/fuse; grep ' /sys ' /proc/mounts",
			mod: func(in *Input) {
				in.Pod.Linux.SecurityContext.Privileged = true
				in.Container.Linux.SecurityContext.Privileged = true
				in.ListDevices = func(string) ([]HostDevice, error) {
					return []HostDevice{{Path: "/dev/fuse", Type: 'c', Major: 10, Minor: 229, Mode: 0o666}}, nil
				}
			},
			want: []string{"/dev/fuse\n", "sysfs /sys sysfs rw,"},
		},
		{
			name:   "host network",
			script: "echo $HOSTNAME; cat /proc/sys/kernel/shm_rmid_forced",
			mod: func(in *Input) {
				in.Pod.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
				in.Pod.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1"}
			},
			want: []string{"busybox\n1\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rootfs := filepath.Join(dir, "rootfs")
			host := filepath.Join(dir, "host")
			for _, d := range []string{"rootfs/bin", "rootfs/etc", "rootfs/run/sa", "host/sa", "host/shm"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			files := map[string]string{
				"rootfs/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:50000::/:/bin/sh\n",
				"rootfs/etc/group":  "root:x:0:\nwheel:x:10:root,user-defined-in-image\ngroup-defined-in-image:x:50000:user-defined-in-image\n",
				"host/sa/token":     "token\n",
				"host/hosts":        "127.0.0.1 localhost\n",
				"host/resolv.conf":  "nameserver 10.96.0.10\n",
				"host/hostname":     "busybox\n",
			}
			for p, s := range files {
				if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), busybox, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, applet := range []string{"sh", "id", "hostname", "grep", "cat", "ls"} {
				if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
					t.Fatal(err)
				}
			}

			in := busyboxInput()
			in.RootfsPath = rootfs
			in.CgroupsPath = "/berth-spec-test/" + strings.ReplaceAll(tc.name, " ", "-")
			t.Cleanup(func() { removeCgroup(in.CgroupsPath) })
			in.Image.Env = append(in.Image.Env, "PATH=/bin")
			in.Container.Args = []string{"/bin/sh", "-c", tc.script}
			in.Container.Mounts = []*runtimeapi.Mount{{ContainerPath: "/run/sa", HostPath: filepath.Join(host, "sa"), Readonly: true}}
			in.PodMounts = []specs.Mount{
				{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(host, "hosts"), Options: []string{"rbind", "rprivate", "ro"}},
				{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(host, "resolv.conf"), Options: []string{"rbind", "rprivate", "ro"}},
				{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(host, "hostname"), Options: []string{"rbind", "rprivate", "ro"}},
				{Destination: "/dev/shm", Type: "bind", Source: filepath.Join(host, "shm"), Options: []string{"rbind", "rprivate", "rw"}},
			}
			tc.mod(&in)
			res, err := Generate(in)
			if err != nil {
				t.Fatal(err)
			}
			for i := range res.Spec.Linux.Namespaces {
				res.Spec.Linux.Namespaces[i].Path = ""
			}
			b, err := json.Marshal(res.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			id := "berth-spec-test-" + filepath.Base(dir)
			out, err := exec.Command(runc, "--root", filepath.Join(dir, "state"), "run", "--bundle", dir, id).CombinedOutput()
			if err != nil {
				t.Fatalf("runc run: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// removeCgroup removes what runc left of a container's cgroup path and
// its parent in every hierarchy.
func removeCgroup(p string) {
	for _, q := range []string{p, filepath.Dir(p)} {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + q)
		for _, d := range dirs {
			os.Remove(d)
		}
	}
}
