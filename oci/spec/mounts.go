package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultMounts are containerd's default mounts minus /run (containerd's
// CRI plugin drops it too) and /dev/shm (a pod mount, shared by the pod's
// containers). sysfs and the cgroup filesystem are read-only unless the
// container is privileged.
func defaultMounts(privileged bool) []specs.Mount {
	ro := "ro"
	if privileged {
		ro = "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", ro}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", ro}},
	}
}

// extraMountOptions are the Mount.mount_options a request may add to a
// bind mount: flags that only take rights away. Anything else (data
// options, "rw", propagation, id mapping) could undo what the other
// fields ask for.
var extraMountOptions = map[string]bool{
	"nosuid": true, "nodev": true, "noexec": true,
	"noatime": true, "nodiratime": true, "relatime": true, "strictatime": true, "nosymfollow": true,
	"rnosuid": true, "rnodev": true, "rnoexec": true,
	"rnoatime": true, "rnodiratime": true, "rrelatime": true, "rstrictatime": true, "rnosymfollow": true,
}

// criMount converts one CRI mount into a bind mount. podUserns is the
// pod's user namespace options when it has one of its own (mode POD).
func criMount(i int, m *runtimeapi.Mount, podUserns *runtimeapi.UserNamespace) (specs.Mount, error) {
	field := indexed("mounts", i)
	dst, err := containerPath(field+".container_path", m.GetContainerPath())
	if err != nil {
		return specs.Mount{}, err
	}
	src := m.GetHostPath()
	switch {
	case src == "":
		return specs.Mount{}, fieldErr(field+".host_path", "empty")
	case !path.IsAbs(src):
		return specs.Mount{}, fieldErr(field+".host_path", "%q is not an absolute path", src)
	case strings.IndexByte(src, 0) >= 0:
		return specs.Mount{}, fieldErr(field+".host_path", "contains a NUL byte")
	}
	idmapped, err := mountIDMapped(field, m, podUserns)
	if err != nil {
		return specs.Mount{}, err
	}

	opts := []string{"rbind"}
	switch p := m.GetPropagation(); p {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts = append(opts, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts = append(opts, "rshared")
	default:
		return specs.Mount{}, fieldErr(field+".propagation", "unknown propagation %d", p)
	}
	if m.GetReadonly() {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	if m.GetRecursiveReadOnly() {
		// As the CRI requires: recursive read-only needs readonly, and
		// private propagation, because a mount propagated in later would
		// not be read-only.
		if !m.GetReadonly() {
			return specs.Mount{}, fieldErr(field+".recursive_read_only", "requires readonly")
		}
		if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return specs.Mount{}, fieldErr(field+".recursive_read_only", "requires propagation PROPAGATION_PRIVATE, not %s", m.GetPropagation())
		}
		opts = append(opts, "rro")
	}
	for j, o := range m.GetMountOptions() {
		if !extraMountOptions[o] {
			return specs.Mount{}, fieldErr(indexed(field+".mount_options", j), "option %q is not supported", o)
		}
		if !slices.Contains(opts, o) {
			opts = append(opts, o)
		}
	}
	if idmapped {
		// runc maps the mount through the user namespace the container
		// joins, submounts included.
		opts = append(opts, "ridmap")
	}
	// selinux_relabel is the caller's effect (label.Relabel on the host
	// path); the spec carries no per-mount label.
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}, nil
}

// mountIDMapped tells whether a request mount is to be idmapped: kubelet
// gives every volume of a pod in its own user namespace that namespace's
// mappings, so that the volume's files owned by host IDs show as the
// container's. Other mappings cannot be honoured by a mount inside that
// namespace, and a pod in the node's user namespace needs none.
func mountIDMapped(field string, m *runtimeapi.Mount, podUserns *runtimeapi.UserNamespace) (bool, error) {
	if len(m.GetUidMappings()) == 0 && len(m.GetGidMappings()) == 0 {
		return false, nil
	}
	if podUserns == nil {
		return false, fieldErr(field+".uidMappings", "id-mapped mounts need a pod with a user namespace of its own (userns_options mode POD)")
	}
	if !sameMappings(m.GetUidMappings(), podUserns.GetUids()) {
		return false, fieldErr(field+".uidMappings", "must be the pod's user namespace mapping")
	}
	if !sameMappings(m.GetGidMappings(), podUserns.GetGids()) {
		return false, fieldErr(field+".gidMappings", "must be the pod's user namespace mapping")
	}
	return true, nil
}

// containerPath checks a path inside the container and cleans it.
func containerPath(field, p string) (string, error) {
	switch {
	case p == "":
		return "", fieldErr(field, "empty")
	case !path.IsAbs(p):
		return "", fieldErr(field, "%q is not an absolute path", p)
	case strings.IndexByte(p, 0) >= 0:
		return "", fieldErr(field, "contains a NUL byte")
	}
	p = path.Clean(p)
	if p == "/" {
		return "", fieldErr(field, "cannot mount over the container's root")
	}
	return p, nil
}

// rootfsPropagation makes the container's root a shared or slave mount when
// a mount asks for propagation: a mount propagates only as far as its
// parent lets it.
func rootfsPropagation(mounts []*runtimeapi.Mount) string {
	prop := ""
	for _, m := range mounts {
		if m.GetImage() != nil {
			continue
		}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			return "rshared"
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			prop = "rslave"
		}
	}
	return prop
}

// buildMounts merges the default mounts, the pod's mounts, the request's
// mounts and the image's anonymous volumes. At a destination used twice
// the request wins over the pod, and the pod over the defaults. Image
// volumes (Mount.image) are bound from where the caller mounted them
// (Input.ImageMounts). The result is
// ordered so that a mount comes after every mount above it.
func buildMounts(in Input, privileged bool) ([]specs.Mount, []Volume, error) {
	var order []string
	byDst := map[string]specs.Mount{}
	put := func(m specs.Mount) {
		if _, ok := byDst[m.Destination]; !ok {
			order = append(order, m.Destination)
		}
		byDst[m.Destination] = m
	}
	for _, m := range defaultMounts(privileged) {
		put(m)
	}
	for _, m := range in.PodMounts {
		if !path.IsAbs(m.Destination) || path.Clean(m.Destination) == "/" {
			return nil, nil, fmt.Errorf("pod mount destination %q is not an absolute path below /", m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		m.Options = slices.Clone(m.Options)
		put(m)
	}
	imageMounts, err := ImageMounts(in.Container)
	if err != nil {
		return nil, nil, err
	}
	for _, im := range imageMounts {
		src, ok := in.ImageMounts[im.Index]
		if !ok {
			return nil, nil, fieldErr(indexed("mounts", im.Index)+".image", "the image volume was not prepared")
		}
		put(imageVolumeMount(im.ContainerPath, src))
	}
	for i, m := range in.Container.GetMounts() {
		if m.GetImage() != nil {
			continue
		}
		sm, err := criMount(i, m, PodUserNamespace(in.Pod))
		if err != nil {
			return nil, nil, err
		}
		put(sm)
	}

	volumes, err := imageVolumes(in.Image.Volumes, byDst)
	if err != nil {
		return nil, nil, err
	}
	for i, v := range volumes {
		if in.VolumeSource == nil {
			continue
		}
		volumes[i].HostPath = in.VolumeSource(v.ContainerPath)
		opts := []string{"rbind", "rprivate", "rw"}
		if PodUserNamespace(in.Pod) != nil {
			// berthd makes the directory as the node's root: idmapped,
			// it belongs to the container's root.
			opts = append(opts, "ridmap")
		}
		put(specs.Mount{Destination: v.ContainerPath, Type: "bind", Source: volumes[i].HostPath, Options: opts})
	}

	mounts := make([]specs.Mount, 0, len(order))
	for _, d := range order {
		mounts = append(mounts, byDst[d])
	}
	sortMounts(mounts)
	return mounts, volumes, nil
}

// sortMounts orders mounts by the depth of their destination, keeping the
// given order among equals, so /dev comes before /dev/pts whatever the
// order they were listed in.
func sortMounts(mounts []specs.Mount) {
	slices.SortStableFunc(mounts, func(a, b specs.Mount) int {
		return pathDepth(a.Destination) - pathDepth(b.Destination)
	})
}

func pathDepth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// imageVolumes checks the image's Volumes and returns those no mount
// covers, sorted. A volume path must be absolute and must not be "/" or
// contain "..".
func imageVolumes(vols map[string]struct{}, mounted map[string]specs.Mount) ([]Volume, error) {
	var out []Volume
	for v := range vols {
		field := "image_config.Volumes[" + v + "]"
		if !path.IsAbs(v) {
			return nil, fieldErr(field, "not an absolute path")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fieldErr(field, "contains a NUL byte")
		}
		if slices.Contains(strings.Split(v, "/"), "..") {
			return nil, fieldErr(field, "contains \"..\"")
		}
		p := path.Clean(v)
		if p == "/" {
			return nil, fieldErr(field, "cannot be the root")
		}
		if _, ok := mounted[p]; ok {
			continue
		}
		if slices.ContainsFunc(out, func(o Volume) bool { return o.ContainerPath == p }) {
			continue
		}
		out = append(out, Volume{ContainerPath: p})
	}
	slices.SortFunc(out, func(a, b Volume) int { return strings.Compare(a.ContainerPath, b.ContainerPath) })
	return out, nil
}
