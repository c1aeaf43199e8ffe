package shim

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// UpdateRequest is the argument of Update; see oci/shim/api.
type UpdateRequest = api.UpdateRequest

// Update applies new cgroup resources to a created or running container
// and records them in its spec and libcontainer state. A stopped container
// gives ErrNotRunning; a memory limit below what the container uses now
// gives ErrFailedPrecondition.
func (c *Client) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	if r == nil {
		return errorf(ErrInvalid, "resources: must be set")
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("shim: update %s: %w", id, err)
	}
	_, err = invoke[Empty](ctx, c, api.MethodUpdate, &UpdateRequest{ID: id, Resources: b})
	return err
}
