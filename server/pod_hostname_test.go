package server

import (
	"os"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod without a hostname gets the node's, not its name: critest's pod
// names are longer than the 64 bytes a hostname may have.
func TestPodHostname(t *testing.T) {
	node, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	long := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: strings.Repeat("p", 100)}}
	if got := podHostname(long); got != node {
		t.Errorf("no hostname: got %q, want the node's %q", got, node)
	}
	named := &runtimeapi.PodSandboxConfig{Hostname: "web-0", Metadata: &runtimeapi.PodSandboxMetadata{Name: "web"}}
	if got := podHostname(named); got != "web-0" {
		t.Errorf("hostname web-0: got %q", got)
	}
}
