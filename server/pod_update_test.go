package server

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/server/store"
)

func TestPodResourcesInfo(t *testing.T) {
	p := &store.Pod{}
	if got := string(podResourcesInfo(p, "cgroupfs")); got != "null" {
		t.Errorf("before any update: %s", got)
	}
	p.Resources, _ = proto.Marshal(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuQuota: 20000})
	p.OwnCgroup = true
	var info struct {
		Resources map[string]any `json:"resources"`
		Overhead  any            `json:"overhead"`
		CgroupSet bool           `json:"cgroupSet"`
	}
	if err := json.Unmarshal(podResourcesInfo(p, "cgroupfs"), &info); err != nil {
		t.Fatal(err)
	}
	if info.Resources["memory_limit_in_bytes"] != "67108864" || info.Resources["cpu_quota"] != "20000" || info.Overhead != nil || !info.CgroupSet {
		t.Errorf("info %+v", info)
	}
	if ownsPodCgroup(p, "systemd") || ownsPodCgroup(&store.Pod{}, "cgroupfs") {
		t.Error("berthd sets only the pod cgroups it made, with the cgroupfs driver")
	}
}
