package spec

import (
	"errors"
	"os"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// skippedHostDevices are the parts of the host's /dev a privileged
// container does not get: they are mounts of their own (pts, shm, mqueue),
// per-process links (fd), the host's console, or container managers'
// private state. runc's own host device scan skips the same.
var skippedHostDevices = []string{"/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd", "/dev/console", "/dev/.lxc", "/dev/.lxd-mounts", "/dev/.udev"}

func skippedHostDevice(p string) bool {
	for _, s := range skippedHostDevices {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// buildDevices returns the device nodes to create in the container and
// the device cgroup rules. The rules start by denying everything, then
// allow each requested device with its permissions (libcontainer appends
// its default devices, /dev/null and friends, after them). A privileged
// container gets every host device and a rule allowing all.
func buildDevices(reqs []*runtimeapi.Device, privileged bool, info func(string) (HostDevice, error), list func(string) ([]HostDevice, error)) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var (
		order []string
		byDst = map[string]specs.LinuxDevice{}
		rules []specs.LinuxDeviceCgroup
	)
	put := func(d specs.LinuxDevice) {
		if _, ok := byDst[d.Path]; !ok {
			order = append(order, d.Path)
		}
		byDst[d.Path] = d
	}

	if privileged {
		rules = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		if list == nil {
			return nil, nil, errors.New("no way to list host devices for a privileged container")
		}
		host, err := list("/dev")
		if err != nil {
			return nil, nil, err
		}
		for _, hd := range host {
			if skippedHostDevice(path.Clean(hd.Path)) || !isDeviceType(hd.Type) {
				continue
			}
			put(linuxDevice(path.Clean(hd.Path), hd))
		}
	} else {
		rules = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	}

	for i, r := range reqs {
		field := indexed("devices", i)
		dst, err := containerPath(field+".container_path", r.GetContainerPath())
		if err != nil {
			return nil, nil, err
		}
		src := r.GetHostPath()
		if !path.IsAbs(src) || strings.IndexByte(src, 0) >= 0 {
			return nil, nil, fieldErr(field+".host_path", "%q is not an absolute path", src)
		}
		src = path.Clean(src)
		perms, err := devicePermissions(field+".permissions", r.GetPermissions())
		if err != nil {
			return nil, nil, err
		}
		if info == nil {
			return nil, nil, errors.New("no way to look up host devices")
		}
		hd, err := info(src)
		if err != nil {
			return nil, nil, fieldErr(field+".host_path", "%v", err)
		}

		var found []specs.LinuxDevice
		switch {
		case hd.Mode.IsDir():
			// A directory (say /dev/snd) stands for every device below it.
			if list == nil {
				return nil, nil, errors.New("no way to list host devices")
			}
			below, err := list(src)
			if err != nil {
				return nil, nil, fieldErr(field+".host_path", "%v", err)
			}
			for _, d := range below {
				rel := strings.TrimPrefix(path.Clean(d.Path), src)
				if !isDeviceType(d.Type) || rel == "" || rel[0] != '/' {
					continue
				}
				found = append(found, linuxDevice(dst+rel, d))
			}
		case isDeviceType(hd.Type):
			found = append(found, linuxDevice(dst, hd))
		default:
			return nil, nil, fieldErr(field+".host_path", "%s is not a device", src)
		}
		for _, d := range found {
			put(d)
			if !privileged && d.Type != "p" {
				rules = append(rules, specs.LinuxDeviceCgroup{
					Allow: true, Type: d.Type, Major: ptr(d.Major), Minor: ptr(d.Minor), Access: perms,
				})
			}
		}
	}

	devices := make([]specs.LinuxDevice, 0, len(order))
	for _, p := range order {
		devices = append(devices, byDst[p])
	}
	if len(devices) == 0 {
		devices = nil
	}
	return devices, rules, nil
}

func isDeviceType(t byte) bool { return t == 'c' || t == 'b' || t == 'p' }

func linuxDevice(containerPath string, hd HostDevice) specs.LinuxDevice {
	mode := hd.Mode & os.ModePerm
	return specs.LinuxDevice{
		Path:     containerPath,
		Type:     string(hd.Type),
		Major:    hd.Major,
		Minor:    hd.Minor,
		FileMode: &mode,
		UID:      ptr(hd.UID),
		GID:      ptr(hd.GID),
	}
}

// devicePermissions checks cgroup device permissions: some of r, w and m,
// "rwm" when empty.
func devicePermissions(field, p string) (string, error) {
	if p == "" {
		return "rwm", nil
	}
	var out []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != 'r' && c != 'w' && c != 'm' {
			return "", fieldErr(field, "%q: only r, w and m are allowed", p)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return string(out), nil
}

func ptr[T any](v T) *T { return &v }
