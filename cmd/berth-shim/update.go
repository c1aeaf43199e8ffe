package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// Update gives a created or running container new cgroup resources
// through the pod's runtime binary's update command, which writes them to the container's cgroups and its
// own record; the bundle's config.json gets them too, so that it keeps
// describing the container.
func (s *server) Update(req *api.UpdateRequest) (*api.Empty, error) {
	c, err := s.get(req.ID)
	if err != nil {
		return nil, err
	}
	if len(req.Resources) == 0 {
		return nil, api.Errorf(api.ErrInvalid, "resources: must be set")
	}
	var r specs.LinuxResources
	if err := json.Unmarshal(req.Resources, &r); err != nil {
		return nil, api.Errorf(api.ErrInvalid, "resources: "+err.Error())
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.deleted {
		return nil, api.Errorf(api.ErrNotFound, "container "+req.ID)
	}
	if err := c.update(&r); err != nil {
		log.Printf("update %s: %v", req.ID, err)
		return nil, err
	}
	log.Printf("container %s: resources updated", req.ID)
	return &api.Empty{}, nil
}

// update applies r; the caller holds c.op.
func (c *container) update(r *specs.LinuxResources) error {
	select {
	case <-c.exited:
		return api.Errorf(api.ErrNotRunning, fmt.Sprintf("container %s has exited", c.id))
	default:
	}
	old, err := c.spec.resources()
	if err != nil {
		return fmt.Errorf("container %s: resources as created: %w", c.id, err)
	}
	r = keepUnchangeable(old, r)
	if err := c.h.update(r); err != nil {
		if errors.Is(err, api.ErrNotRunning) || errors.Is(err, api.ErrInvalid) {
			return err
		}
		// The kernel refuses a memory limit it cannot reclaim down to
		// (EBUSY on cgroup v1). Say so plainly: it is the state of the
		// container, not the request, that is at fault.
		if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
			if usage, ok := memoryUsage(c.cgroup); ok && usage > uint64(*r.Memory.Limit) {
				return api.Errorf(api.ErrFailedPrecondition, fmt.Sprintf("memory limit %d is below the %d bytes container %s uses now: %v",
					*r.Memory.Limit, usage, c.id, err))
			}
		}
		// A value the kernel does not take (EINVAL; ERANGE for cpus the
		// host lacks) is the request's fault.
		if refusedValue(err) {
			return api.Errorf(api.ErrInvalid, fmt.Sprintf("resources: the kernel refused a value for container %s: %v", c.id, err))
		}
		return fmt.Errorf("update container %s: %w", c.id, err)
	}
	if b, err := json.Marshal(r); err == nil {
		c.spec.Linux.Resources = b
	}
	if c.bundle != "" {
		if err := writeBundleResources(c.bundle, r); err != nil {
			// The cgroups and the runtime's record are right; only the
			// bundle's copy lags.
			log.Printf("container %s: record resources in the bundle: %v", c.id, err)
		}
	}
	return nil
}

// refusedValue tells whether err says the kernel refused a value (EINVAL;
// ERANGE for cpus the host lacks). The runtime binary reports errors as
// text, which ends with the errno's message, as Go's and runc's do.
func refusedValue(err error) bool {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ERANGE) {
		return true
	}
	msg := err.Error()
	return strings.HasSuffix(msg, unix.EINVAL.Error()) || strings.HasSuffix(msg, unix.ERANGE.Error())
}

// keepUnchangeable returns r with what CRI cannot change taken from old:
// the device rules always, and the pids limit, block I/O, network and RDMA
// settings unless r sets them.
func keepUnchangeable(old, r *specs.LinuxResources) *specs.LinuxResources {
	out := *r
	if old == nil {
		out.Devices = nil
		return &out
	}
	out.Devices = old.Devices
	if out.Pids == nil {
		out.Pids = old.Pids
	}
	if out.BlockIO == nil {
		out.BlockIO = old.BlockIO
	}
	if out.Network == nil {
		out.Network = old.Network
	}
	if out.Rdma == nil {
		out.Rdma = old.Rdma
	}
	return &out
}

// memoryUsage reads the memory a container's cgroup is charged for now.
func memoryUsage(paths map[string]string) (uint64, bool) {
	if p := paths["memory"]; p != "" {
		if n, ok := readUint(filepath.Join(p, "memory.usage_in_bytes")); ok {
			return n, true
		}
	}
	if p := paths[""]; p != "" {
		return readUint(filepath.Join(p, "memory.current"))
	}
	return 0, false
}

func readUint(file string) (uint64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	var n uint64
	if _, err := fmt.Sscanf(string(b), "%d", &n); err != nil {
		return 0, false
	}
	return n, true
}

// writeBundleResources replaces linux.resources in the bundle's
// config.json, atomically (temporary file, rename).
func writeBundleResources(bundle string, r *specs.LinuxResources) error {
	file := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Linux.Resources = r
	if b, err = json.Marshal(&spec); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(bundle, ".config-*.json")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
