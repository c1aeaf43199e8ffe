package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/server/store"
)

// UpdateContainerResources resizes a container in place (kubelet's
// in-place pod resize): the request's linux resources, merged over what the
// container has (zero fields stay as they are, as in containerd and CRI-O),
// go to its live cgroups through the pod's monitor, then into its record,
// which ContainerStatus reports and which outlives a berthd restart.
//
// Created and running containers can be updated (a created one starts with
// the new values); an exited one answers FailedPrecondition, as there is
// nothing to resize (CRI-O refuses too; containerd only rewrites the spec
// of a container that will never run again). A memory limit below what the
// container uses now, which the kernel refuses, answers FailedPrecondition
// too, with the usage in the message, and the old limits stay; a value the
// kernel refuses (cpus the host lacks) answers InvalidArgument. The windows
// resources and the annotations are ignored: berth runs Linux containers
// and has no NRI plugins to pass annotations to.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	defer s.ctrLocks.lock(c.ID)()
	if c, err = s.refreshContainer(ctx, c.ID); err != nil {
		return nil, err
	}
	if c.State != store.ContainerCreated && c.State != store.ContainerRunning {
		return nil, status.Errorf(codes.FailedPrecondition, "container_id: container %s is %s; only created or running containers can be updated", c.ID, c.State)
	}
	merged := spec.MergeResources(containerResources(c), req.GetLinux())
	res, err := spec.UpdateResources("linux.", merged, s.facts.CgroupV2, s.facts.HugetlbController)
	if err != nil {
		return nil, requestError("", err)
	}
	pb, err := proto.Marshal(merged)
	if err != nil {
		return nil, err
	}
	pod, err := s.store.Pod(c.PodID)
	if err != nil {
		return nil, err
	}
	client, err := s.shimFor(pod)
	if err != nil {
		return nil, shimError(err)
	}
	if err := client.Update(ctx, c.ID, res); err != nil {
		return nil, shimError(err)
	}
	if _, err := s.store.UpdateContainer(c.ID, func(r *store.Container) error {
		r.Resources = pb
		return nil
	}); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// containerResources are a container's resources now: as last updated, else
// as created. Nil when it was created without any.
func containerResources(c *store.Container) *runtimeapi.LinuxContainerResources {
	if len(c.Resources) > 0 {
		r := &runtimeapi.LinuxContainerResources{}
		if err := proto.Unmarshal(c.Resources, r); err == nil {
			return r
		}
	}
	return c.Config().GetLinux().GetResources()
}
