package server

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/oci/spec"
	"github.com/berth-runtime/berth/pkg/podfiles"
)

// validators check a request before its handler runs, keyed by RPC name.
// Each error is InvalidArgument and names the field, so a client learns
// exactly what to fix. RPCs without an entry take any request.
var validators = map[string]func(any) error{
	"PullImage": func(r any) error {
		req := r.(*runtimeapi.PullImageRequest)
		if err := imageName("image", req.GetImage()); err != nil {
			return err
		}
		if a := req.GetAuth(); a != nil && a.GetAuth() != "" {
			if _, err := (&images.Auth{Auth: a.GetAuth()}).Authenticator(); err != nil {
				return invalid("auth.auth", "%v", err)
			}
		}
		return nil
	},
	"ImageStatus": func(r any) error {
		return imageSet("image", r.(*runtimeapi.ImageStatusRequest).GetImage())
	},
	"RemoveImage": func(r any) error {
		return imageSet("image", r.(*runtimeapi.RemoveImageRequest).GetImage())
	},
	"RunPodSandbox": func(r any) error { return validatePodConfig(r.(*runtimeapi.RunPodSandboxRequest).GetConfig()) },
	"StopPodSandbox": func(r any) error {
		return required("pod_sandbox_id", r.(*runtimeapi.StopPodSandboxRequest).GetPodSandboxId())
	},
	"RemovePodSandbox": func(r any) error {
		return required("pod_sandbox_id", r.(*runtimeapi.RemovePodSandboxRequest).GetPodSandboxId())
	},
	"PodSandboxStatus": func(r any) error {
		return required("pod_sandbox_id", r.(*runtimeapi.PodSandboxStatusRequest).GetPodSandboxId())
	},
	"CreateContainer": func(r any) error {
		req := r.(*runtimeapi.CreateContainerRequest)
		if err := required("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
			return err
		}
		return validateContainerConfig(req.GetConfig())
	},
	"StartContainer": func(r any) error {
		return required("container_id", r.(*runtimeapi.StartContainerRequest).GetContainerId())
	},
	"StopContainer": func(r any) error {
		req := r.(*runtimeapi.StopContainerRequest)
		if req.GetTimeout() < 0 {
			return invalid("timeout", "%d is negative", req.GetTimeout())
		}
		return required("container_id", req.GetContainerId())
	},
	"RemoveContainer": func(r any) error {
		return required("container_id", r.(*runtimeapi.RemoveContainerRequest).GetContainerId())
	},
	"ContainerStatus": func(r any) error {
		return required("container_id", r.(*runtimeapi.ContainerStatusRequest).GetContainerId())
	},
	"ReopenContainerLog": func(r any) error {
		return required("container_id", r.(*runtimeapi.ReopenContainerLogRequest).GetContainerId())
	},
	"ExecSync": func(r any) error {
		req := r.(*runtimeapi.ExecSyncRequest)
		if err := required("container_id", req.GetContainerId()); err != nil {
			return err
		}
		if len(req.GetCmd()) == 0 || req.GetCmd()[0] == "" {
			return invalid("cmd", "must name a command")
		}
		if req.GetTimeout() < 0 {
			return invalid("timeout", "%d is negative", req.GetTimeout())
		}
		return nil
	},
	"Exec":        func(r any) error { return validateExec(r.(*runtimeapi.ExecRequest)) },
	"Attach":      func(r any) error { return validateAttach(r.(*runtimeapi.AttachRequest)) },
	"PortForward": func(r any) error { return validatePortForward(r.(*runtimeapi.PortForwardRequest)) },
	"UpdateContainerResources": func(r any) error {
		req := r.(*runtimeapi.UpdateContainerResourcesRequest)
		if err := required("container_id", req.GetContainerId()); err != nil {
			return err
		}
		return validateResources("linux.", req.GetLinux())
	},
	"UpdatePodSandboxResources": func(r any) error {
		req := r.(*runtimeapi.UpdatePodSandboxResourcesRequest)
		if err := required("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
			return err
		}
		if err := validateResources("overhead.", req.GetOverhead()); err != nil {
			return err
		}
		return validateResources("resources.", req.GetResources())
	},
}

func required(field, v string) error {
	if v == "" {
		return invalid(field, "must not be empty")
	}
	return nil
}

// validateResources checks the values of an update's resources on their
// own, as an update would merge them (so a quota may come without a
// period). Whether the host can apply them (unified settings need cgroup
// v2) is the handler's business.
func validateResources(prefix string, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	if _, err := spec.UpdateResources(prefix, spec.MergeResources(nil, r), true, true); err != nil {
		return requestError("", err)
	}
	return nil
}

func validatePodConfig(cfg *runtimeapi.PodSandboxConfig) error {
	if cfg == nil {
		return invalid("config", "must be set")
	}
	md := cfg.GetMetadata()
	if md == nil {
		return invalid("config.metadata", "must be set")
	}
	for _, f := range [][2]string{{"config.metadata.name", md.GetName()}, {"config.metadata.namespace", md.GetNamespace()}, {"config.metadata.uid", md.GetUid()}} {
		if err := required(f[0], f[1]); err != nil {
			return err
		}
	}
	if h := cfg.GetHostname(); h != "" {
		if err := podfiles.ValidateHostname(h); err != nil {
			return invalid("config.hostname", "%v", err)
		}
	}
	if d := cfg.GetLogDirectory(); d != "" && !filepath.IsAbs(d) {
		return invalid("config.log_directory", "%q must be absolute", d)
	}
	for i, pm := range cfg.GetPortMappings() {
		if pm.GetContainerPort() < 1 || pm.GetContainerPort() > 65535 {
			return invalid(fmt.Sprintf("config.port_mappings[%d].container_port", i), "%d is not a port", pm.GetContainerPort())
		}
		if pm.GetHostPort() < 0 || pm.GetHostPort() > 65535 {
			return invalid(fmt.Sprintf("config.port_mappings[%d].host_port", i), "%d is not a port", pm.GetHostPort())
		}
		if ip := pm.GetHostIp(); ip != "" && net.ParseIP(ip) == nil {
			return invalid(fmt.Sprintf("config.port_mappings[%d].host_ip", i), "%q is not an IP address", ip)
		}
	}
	if p := cfg.GetLinux().GetCgroupParent(); p != "" && strings.HasPrefix(p, "/") && (filepath.Clean(p) != p || strings.Contains(p, "..")) {
		return invalid("config.linux.cgroup_parent", "%q is not a clean path", p)
	}
	m := modesOf(cfg)
	if err := spec.ValidateSysctls(cfg.GetLinux().GetSysctls(), m.hostNet, m.hostIPC); err != nil {
		return invalid("config.linux.sysctls", "%v", err)
	}
	if err := spec.ValidatePodUserNamespace("config.linux.security_context.namespace_options", cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()); err != nil {
		return requestError("", err)
	}
	return nil
}

func validateContainerConfig(cfg *runtimeapi.ContainerConfig) error {
	if cfg == nil {
		return invalid("config", "must be set")
	}
	if cfg.GetMetadata() == nil {
		return invalid("config.metadata", "must be set")
	}
	if err := required("config.metadata.name", cfg.GetMetadata().GetName()); err != nil {
		return err
	}
	if err := imageSet("config.image", cfg.GetImage()); err != nil {
		return err
	}
	if p := cfg.GetLogPath(); p != "" && !filepath.IsLocal(p) {
		return invalid("config.log_path", "%q must be a relative path inside the pod's log directory", p)
	}
	return nil
}

func validate(fullMethod string, req any) error {
	if v, ok := validators[shortMethod(fullMethod)]; ok {
		return v(req)
	}
	return nil
}

// imageSet requires an ImageSpec with a non-empty image; the name may be a
// reference or an image ID.
func imageSet(field string, spec *runtimeapi.ImageSpec) error {
	if spec == nil {
		return invalid(field, "must be set")
	}
	if spec.GetImage() == "" {
		return invalid(field+".image", "must not be empty")
	}
	return nil
}

// imageName requires an ImageSpec whose image is a valid reference.
func imageName(field string, spec *runtimeapi.ImageSpec) error {
	if err := imageSet(field, spec); err != nil {
		return err
	}
	if _, err := images.ParseRef(spec.GetImage()); err != nil {
		return invalid(field+".image", "%v", err)
	}
	return nil
}
