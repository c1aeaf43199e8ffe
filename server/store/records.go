// Package store keeps berthd's pods and containers: records in the state
// store (so they survive kill -9) mirrored in memory for fast lookups.
package store

import (
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pod phases. A pod is recorded as creating before any of its effects
// happen, so a crash during RunPodSandbox leaves a record that tells the
// next start what to undo.
const (
	PodCreating = "creating"
	PodReady    = "ready"
	PodStopped  = "stopped"
)

// Pod is one pod sandbox.
type Pod struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"` // reserved name: name_namespace_uid_attempt
	Phase     string    `json:"phase"`
	CreatedAt time.Time `json:"createdAt"`
	ConfigPB  []byte    `json:"config"` // runtimeapi.PodSandboxConfig, protobuf
	Handler   string    `json:"handler,omitempty"`

	NetNS string   `json:"netns,omitempty"` // pinned namespaces; empty for host
	IPCNS string   `json:"ipcns,omitempty"`
	UTSNS string   `json:"utsns,omitempty"`
	IPs   []string `json:"ips,omitempty"`
	CNI   []byte   `json:"cni,omitempty"` // raw CNI result

	Dir        string `json:"dir"`                 // state dir: resolv.conf, hosts, hostname, shm
	ShmPath    string `json:"shm"`                 // mounted tmpfs, or /dev/shm for host IPC
	CgroupPath string `json:"cgroup"`              // parent of the containers cgroups
	OwnCgroup  bool   `json:"ownCgroup,omitempty"` // berthd made CgroupPath and removes it
	ShimDir    string `json:"shimDir,omitempty"`
	ShimPID    int    `json:"shimPid,omitempty"`
	PIDHolder  int    `json:"pidHolder,omitempty"` // PID 1 of a shared PID namespace

	// The last UpdatePodSandboxResources: runtimeapi.LinuxContainerResources,
	// protobuf; nil until one came.
	Resources []byte `json:"resources,omitempty"`
	Overhead  []byte `json:"overhead,omitempty"`
}

// Config decodes the pod's CRI config.
func (p *Pod) Config() *runtimeapi.PodSandboxConfig {
	c := &runtimeapi.PodSandboxConfig{}
	_ = proto.Unmarshal(p.ConfigPB, c)
	return c
}

// Container states as recorded; the shim is the authority while it runs.
const (
	ContainerCreated = "created"
	ContainerRunning = "running"
	ContainerExited  = "exited"
	ContainerUnknown = "unknown"
)

// Container is one container of a pod.
type Container struct {
	ID        string    `json:"id"`
	PodID     string    `json:"podId"`
	Name      string    `json:"name"` // reserved name: name_podname_namespace_uid_attempt
	CreatedAt time.Time `json:"createdAt"`
	ConfigPB  []byte    `json:"config"` // runtimeapi.ContainerConfig, protobuf
	ImageRef  string    `json:"imageRef"`
	ImageID   string    `json:"imageId"`
	Layers    []string  `json:"layers"` // chain IDs its root stacks, held while it exists
	LogPath   string    `json:"logPath,omitempty"`
	Bundle    string    `json:"bundle"` // holds config.json and the rootfs mount
	DataDir   string    `json:"dataDir"`
	Rootfs    string    `json:"rootfs"`

	UID          int64   `json:"uid"`
	GID          int64   `json:"gid"`
	Groups       []int64 `json:"groups,omitempty"`
	AppArmor     string  `json:"apparmor,omitempty"`
	ProcessLabel string  `json:"processLabel,omitempty"` // SELinux; empty where it is off
	Seccomp      string  `json:"seccomp,omitempty"`

	State      string    `json:"state"`
	Pid        int       `json:"pid,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`
	ExitCode   int32     `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`

	// Resources are the container's resources after the last
	// UpdateContainerResources (runtimeapi.LinuxContainerResources,
	// protobuf); nil means those of its config.
	Resources []byte `json:"resources,omitempty"`
}

// Config decodes the container's CRI config.
func (c *Container) Config() *runtimeapi.ContainerConfig {
	cfg := &runtimeapi.ContainerConfig{}
	_ = proto.Unmarshal(c.ConfigPB, cfg)
	return cfg
}
