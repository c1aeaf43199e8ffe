package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/oci/host"
	"github.com/berth-runtime/berth/oci/rootfs"
	"github.com/berth-runtime/berth/oci/shim"
	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/pkg/userdb"
	"github.com/berth-runtime/berth/server/store"
)

// CreateContainer creates a container in a ready pod: its root (an overlay
// of the image's layers), its OCI spec, and the container itself in the
// pod's monitor, stopped before the user's process runs.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	received := time.Now() // CreatedAt; the start of the create-to-running metric
	pod, err := s.store.Pod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	defer s.podLocks.lock(pod.ID)()
	if pod.Phase != store.PodReady {
		return nil, status.Errorf(codes.FailedPrecondition, "pod_sandbox_id: pod %s is not ready", pod.ID)
	}
	// A copy: image volumes record their image's ID in it.
	cfg := proto.Clone(req.GetConfig()).(*runtimeapi.ContainerConfig)
	podCfg := pod.Config()
	img := s.images.Get(cfg.GetImage().GetImage())
	if img == nil {
		return nil, status.Errorf(codes.NotFound, "config.image.image: image %q is not present; pull it first", cfg.GetImage().GetImage())
	}
	imgCfg, err := s.images.Config(img)
	if err != nil {
		return nil, err
	}
	pb, err := proto.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	id := newID()
	md, pmd := cfg.GetMetadata(), podCfg.GetMetadata()
	c := &store.Container{
		ID:        id,
		PodID:     pod.ID,
		Name:      fmt.Sprintf("%s_%s_%s_%s_%d", md.GetName(), pmd.GetName(), pmd.GetNamespace(), pmd.GetUid(), md.GetAttempt()),
		CreatedAt: received,
		ConfigPB:  pb,
		ImageRef:  cfg.GetImage().GetImage(),
		ImageID:   img.ID,
		Bundle:    filepath.Join(s.cfg.StateDir, "containers", id),
		DataDir:   filepath.Join(s.cfg.Root, "containers", id),
		State:     store.ContainerCreated,
		Layers:    img.ChainIDs(),
	}
	if dir, p := podCfg.GetLogDirectory(), cfg.GetLogPath(); dir != "" && p != "" {
		c.LogPath = filepath.Join(dir, p)
	}
	layout := rootfs.NewLayout(c.DataDir, c.Bundle)
	c.Rootfs = layout.Target
	if err := s.store.ReserveContainer(c); err != nil {
		if errors.Is(err, store.ErrNameReserved) {
			return nil, status.Error(codes.AlreadyExists, err.Error())
		}
		return nil, err
	}
	var u undo
	ok := false
	defer func() {
		if !ok {
			u.run(s.log.WithField("container", id))
			if err := s.store.DeleteContainer(id); err != nil {
				s.log.WithError(err).Warnf("forgetting failed container %s", id)
			}
		}
	}()
	u.add("container directories", func() error { return errors.Join(os.RemoveAll(c.Bundle), os.RemoveAll(c.DataDir)) })

	lowers := make([]string, len(img.Layers))
	for i, chain := range img.ChainIDs() {
		lowers[i] = s.images.LayerPath(chain)
	}
	// The image's layers must stay while this container uses them.
	release := s.images.Hold(c.Layers...)
	u.add("image hold", func() error { release(); return nil })
	processLabel, mountLabel, err := selinuxLabels(cfg, podCfg)
	if err != nil {
		return nil, invalid("config.linux.security_context.selinux_options", "%v", err)
	}
	c.ProcessLabel = processLabel
	u.add("SELinux label", func() error { releaseSELinux(processLabel); return nil })
	if err := s.mountContainerRoot(pod, lowers, layout, mountLabel); err != nil {
		return nil, err
	}
	u.add("root filesystem", func() error { return rootfs.Unmount(layout.Target) })
	vols, err := s.mountImageVolumes(pod, cfg, c.Bundle, &u)
	if err != nil {
		return nil, err
	}
	if len(vols.layers) > 0 {
		// The record keeps every layer the container uses, the volumes'
		// too, so that a restart holds them again.
		c.Layers = append(c.Layers, vols.layers...)
		if c.ConfigPB, err = proto.Marshal(cfg); err != nil {
			return nil, err
		}
	}

	users, err := userdb.Open(layout.Target)
	if err != nil {
		return nil, err
	}
	cgroupsPath, err := cgroups.ContainerPath(s.cfg.CgroupDriver, pod.CgroupPath, id)
	if err != nil {
		return nil, invalid("pod cgroup_parent", "%v", err)
	}
	in := spec.Input{
		Container:         cfg,
		Pod:               podCfg,
		Image:             imgCfg.Config,
		Users:             users,
		RootfsPath:        layout.Target,
		Namespaces:        podNamespaces(pod),
		CgroupsPath:       cgroupsPath,
		CgroupV2:          s.facts.CgroupV2,
		HugetlbController: s.facts.HugetlbController,
		PodMounts:         podMounts(pod),
		ImageMounts:       vols.paths,
		VolumeSource: func(p string) string {
			return filepath.Join(c.DataDir, "volumes", strings.ReplaceAll(strings.Trim(p, "/"), "/", "_"))
		},
		HostCapabilities: s.facts.Capabilities,
		DeviceInfo:       host.DeviceInfo,
		ListDevices:      host.ListDevices,
		LoadProfile:      os.ReadFile,
		Hostname:         podHostname(podCfg),
		ProcessLabel:     processLabel,
		MountLabel:       mountLabel,
		CanLowerOOMScore: s.facts.CanLowerOOMScore,
		MaxNoFile:        s.facts.MaxNoFile,
	}
	if o := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(); o.GetPid() == runtimeapi.NamespaceMode_TARGET {
		target, err := s.store.Container(o.GetTargetId())
		if err != nil || target.PodID != pod.ID || target.Pid == 0 {
			return nil, invalid("config.linux.security_context.namespace_options.target_id", "%q is not a running container of this pod", o.GetTargetId())
		}
		in.Namespaces.PID = pidNSPath(target.Pid)
	}
	res, err := spec.Generate(in)
	if err != nil {
		return nil, requestError("config.", err)
	}
	for _, v := range res.Volumes {
		if err := os.MkdirAll(v.HostPath, 0o755); err != nil {
			return nil, err
		}
	}
	if err := writeSpec(c.Bundle, res.Spec); err != nil {
		return nil, err
	}
	c.UID, c.GID = int64(res.User.UID), int64(res.User.GID)
	for _, g := range res.User.AdditionalGids {
		c.Groups = append(c.Groups, int64(g))
	}
	c.AppArmor = res.AppArmorProfile

	if c.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(c.LogPath), 0o755); err != nil {
			return nil, err
		}
	}
	client, err := s.shimFor(pod)
	if err != nil {
		return nil, fmt.Errorf("pod %s monitor: %w", pod.ID, err)
	}
	created, err := client.Create(ctx, shim.CreateRequest{
		ID:             id,
		Bundle:         c.Bundle,
		LogPath:        c.LogPath,
		Stdin:          cfg.GetStdin(),
		StdinOnce:      cfg.GetStdinOnce(),
		Tty:            cfg.GetTty(),
		MaxLogLineSize: s.cfg.Runtime.LogMaxLineSize,
	})
	if err != nil {
		return nil, shimError(err)
	}
	u.add("container in monitor", func() error {
		return client.Delete(context.WithoutCancel(ctx), id, true)
	})
	rec, err := s.store.UpdateContainer(id, func(r *store.Container) error {
		*r = *c
		r.Pid = created.Pid
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.holdContainer(id, func() { release(); vols.release() })
	ok = true
	s.emitContainerEvent(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, rec)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// podMounts are the pod's shared files every container gets, unless the
// request mounts something else there (kubelet mounts its own /etc/hosts).
func podMounts(p *store.Pod) []specs.Mount {
	bind := func(src, dst string, ro bool) specs.Mount {
		opts := []string{"rbind", "rprivate"}
		if ro {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	}
	return []specs.Mount{
		bind(filepath.Join(p.Dir, "hosts"), "/etc/hosts", false),
		bind(filepath.Join(p.Dir, "resolv.conf"), "/etc/resolv.conf", false),
		bind(filepath.Join(p.Dir, "hostname"), "/etc/hostname", false),
		bind(p.ShmPath, "/dev/shm", false),
	}
}

func writeSpec(bundle string, sp *specs.Spec) error {
	data, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(bundle, ".config.json")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(bundle, "config.json"))
}

// shimError gives a monitor error its gRPC code.
func shimError(err error) error {
	switch {
	case errors.Is(err, shim.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, shim.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, shim.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, shim.ErrNotRunning), errors.Is(err, shim.ErrFailedPrecondition):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, shim.ErrShimGone):
		return status.Error(codes.Unavailable, err.Error())
	}
	return err
}

func podNamespaces(p *store.Pod) spec.Namespaces {
	ns := spec.Namespaces{Net: p.NetNS, IPC: p.IPCNS, UTS: p.UTSNS, User: podUserNSPath(p)}
	if p.PIDHolder > 0 {
		ns.PID = pidNSPath(p.PIDHolder)
	}
	return ns
}
