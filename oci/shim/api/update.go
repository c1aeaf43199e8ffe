package api

// MethodUpdate changes the cgroup resources of a created or running
// container (CRI UpdateContainerResources).
const MethodUpdate = ServiceName + ".Update"

// UpdateRequest gives a container new cgroup resources.
type UpdateRequest struct {
	ID string
	// Resources is the container's complete new linux.resources of the
	// runtime spec, as its JSON. JSON rather than the Go type: gob sends a
	// pointer to zero like a nil pointer, and the runtime spec gives those
	// different meanings (a quota of 0 is not "no quota"). Device rules
	// and, when absent, the pids limit are kept from the container's spec:
	// CRI cannot change those.
	Resources []byte
}
