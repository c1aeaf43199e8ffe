package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/pkg/config"
)

func TestCheckHandler(t *testing.T) {
	s := &Server{cfg: config.Default()}
	s.cfg.Runtime.Handlers = map[string]config.RuntimeHandler{"runc": {Path: "/usr/sbin/runc"}}
	plain := &runtimeapi.PodSandboxConfig{}
	userns := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}}}}}
	cases := []struct {
		handler string
		cfg     *runtimeapi.PodSandboxConfig
		field   string // "" for accepted
	}{
		{"", plain, ""},
		{"berth", plain, ""},
		{"runc", plain, ""},
		{"", userns, ""},
		{"berth", userns, ""},
		{"runc", userns, "userns_options"},
		{"crun", plain, "runtime_handler"},
		{"Berth", plain, "runtime_handler"},
	}
	for _, c := range cases {
		err := s.checkHandler(c.handler, c.cfg)
		if c.field == "" {
			if err != nil {
				t.Errorf("%q: %v", c.handler, err)
			}
			continue
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%q: %v, want InvalidArgument naming %s", c.handler, err, c.field)
		}
	}
}

func TestRuntimeHandlersListed(t *testing.T) {
	s := &Server{cfg: config.Default()}
	s.cfg.Runtime.Handlers = map[string]config.RuntimeHandler{"runc": {Path: "/r"}, "crun": {Path: "/c"}}
	var names []string
	for _, h := range s.runtimeHandlers() {
		names = append(names, h.Name)
		builtin := h.Name == "" || h.Name == defaultHandler
		if f := h.Features; f.UserNamespaces != builtin || f.RecursiveReadOnlyMounts != builtin {
			t.Errorf("%q: features %v", h.Name, f)
		}
	}
	if strings.Join(names, ",") != ",berth,crun,runc" {
		t.Errorf("handlers %q", names)
	}
}
