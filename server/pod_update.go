package server

import (
	"context"
	"encoding/json"
	"errors"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/server/store"
)

// UpdatePodSandboxResources takes a pod's new resources (the sum of its
// containers') and overhead, merged over the last ones as for containers,
// and keeps them in the pod's record (verbose PodSandboxStatus shows them).
//
// Their sum is written to the pod's cgroup when berthd made that cgroup
// (a pod without cgroup_parent, under runtime.pod_cgroup, cgroupfs driver).
// A cgroup_parent is kubelet's pod cgroup: kubelet sizes it itself during
// a resize, ordering its writes to the pod and container cgroups so that
// no child ever exceeds its parent; a second writer would race with that,
// so there berthd only records (containerd and CRI-O do not write it
// either). A memory limit below the pod's usage is refused by the kernel
// and answers FailedPrecondition; nothing is recorded then.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	pod, err := s.store.Pod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	defer s.podLocks.lock(pod.ID)()
	// Again under the lock: a stop or another update may have come first.
	if pod, err = s.store.Pod(pod.ID); err != nil {
		return nil, err
	}
	if pod.Phase != store.PodReady {
		return nil, status.Errorf(codes.FailedPrecondition, "pod_sandbox_id: pod %s is %s, not ready", pod.ID, pod.Phase)
	}
	overhead := spec.MergeResources(decodeResources(pod.Overhead), req.GetOverhead())
	resources := spec.MergeResources(decodeResources(pod.Resources), req.GetResources())
	for _, part := range []struct {
		prefix string
		r      *runtimeapi.LinuxContainerResources
	}{{"overhead.", overhead}, {"resources.", resources}} {
		if _, err := spec.UpdateResources(part.prefix, part.r, s.facts.CgroupV2, s.facts.HugetlbController); err != nil {
			return nil, requestError("", err)
		}
	}
	total, err := spec.UpdateResources("resources.", spec.PodResources(overhead, resources), s.facts.CgroupV2, s.facts.HugetlbController)
	if err != nil {
		return nil, requestError("", err)
	}
	ob, err := proto.Marshal(overhead)
	if err != nil {
		return nil, err
	}
	rb, err := proto.Marshal(resources)
	if err != nil {
		return nil, err
	}
	if ownsPodCgroup(pod, s.cfg.CgroupDriver) {
		if err := cgroups.SetResources(pod.CgroupPath, total); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return nil, status.Errorf(codes.FailedPrecondition, "resources.memory_limit_in_bytes: the kernel refused a limit below what pod %s uses now: %v", pod.ID, err)
			}
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ERANGE) {
				return nil, status.Errorf(codes.InvalidArgument, "resources: the kernel refused a value for pod %s: %v", pod.ID, err)
			}
			return nil, err
		}
	}
	if _, err := s.store.UpdatePod(pod.ID, func(p *store.Pod) error {
		p.Overhead, p.Resources = ob, rb
		return nil
	}); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}

// ownsPodCgroup says whether berthd made the pod's cgroup and so sets its
// limits (see UpdatePodSandboxResources).
func ownsPodCgroup(p *store.Pod, driver string) bool {
	return p.OwnCgroup && driver == cgroups.DriverCgroupfs
}

func decodeResources(b []byte) *runtimeapi.LinuxContainerResources {
	if len(b) == 0 {
		return nil
	}
	r := &runtimeapi.LinuxContainerResources{}
	if err := proto.Unmarshal(b, r); err != nil {
		return nil
	}
	return r
}

// podResourcesInfo is the pod's recorded resources for verbose
// PodSandboxStatus: {"resources": ..., "overhead": ..., "cgroupSet": bool},
// or null before any UpdatePodSandboxResources.
func podResourcesInfo(p *store.Pod, driver string) json.RawMessage {
	if len(p.Resources) == 0 && len(p.Overhead) == 0 {
		return json.RawMessage("null")
	}
	enc := func(b []byte) json.RawMessage {
		r := decodeResources(b)
		if r == nil {
			return json.RawMessage("null")
		}
		out, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
		if err != nil {
			return json.RawMessage("null")
		}
		return out
	}
	out, err := json.Marshal(map[string]any{
		"resources": enc(p.Resources),
		"overhead":  enc(p.Overhead),
		"cgroupSet": ownsPodCgroup(p, driver),
	})
	if err != nil {
		return json.RawMessage("null")
	}
	return out
}
