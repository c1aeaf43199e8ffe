package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRunPodSandboxValidatesUserNamespace(t *testing.T) {
	pod := func(u *runtimeapi.UserNamespace) *runtimeapi.RunPodSandboxRequest {
		return &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "n", Uid: "u"},
			Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: u},
			}},
		}}
	}
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	const f = "config.linux.security_context.namespace_options.userns_options"
	for _, tc := range []struct {
		name  string
		u     *runtimeapi.UserNamespace
		field string
	}{
		{"pod", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}, ""},
		{"node", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}, ""},
		{"container", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}, f + ".mode"},
		{"no gids", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m}, f + ".gids"},
	} {
		err := validate("/runtime.v1.RuntimeService/RunPodSandbox", pod(tc.u))
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tc.field+":") {
			t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
}

func TestSearchablePath(t *testing.T) {
	base := t.TempDir()
	node := filepath.Join(base, "node")
	state := filepath.Join(node, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(node, 0o700); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(state, "containers", "c1")

	// A parent of the state dir that others cannot search is the node's
	// to fix: reported, not changed.
	err := searchablePath(state, bundle)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), node) {
		t.Fatalf("err = %v, want FailedPrecondition naming %s", err, node)
	}
	if fi, _ := os.Stat(node); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s changed to %v", node, fi.Mode().Perm())
	}

	for _, d := range []string{filepath.Dir(base), base, node} {
		os.Chmod(d, 0o711)
	}
	if err := searchablePath(state, bundle); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{state, filepath.Join(state, "containers"), bundle} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Errorf("%s not searchable by others: %v %v", d, fi.Mode(), err)
		}
	}
	if err := searchablePath(state, filepath.Join(base, "elsewhere")); err == nil {
		t.Error("a directory outside the state dir was accepted")
	}
	if _, err := os.Stat(filepath.Join(base, "elsewhere")); !os.IsNotExist(err) {
		t.Errorf("a directory outside the state dir was made: %v", err)
	}
}
