package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/shim/api"
)

// ctrSpec is what the shim reads of a container's config.json; the runtime
// binary reads all of it itself. Decoding the full OCI types would keep
// encoding/json's caches of them (a few hundred KiB) in every pod's
// monitor for as long as the pod lives.
type ctrSpec struct {
	Process *ctrProcess `json:"process"`
	Root    *struct {
		Path string `json:"path"`
	} `json:"root"`
	Mounts []ctrMount `json:"mounts"`
	Linux  *struct {
		CgroupsPath string `json:"cgroupsPath"`
		// Resources stay JSON until an update needs them.
		Resources json.RawMessage `json:"resources"`
	} `json:"linux"`
}

// ctrProcess is the part of the spec's process the shim looks at; raw is
// all of it, the base of every process exec'd into the container.
type ctrProcess struct {
	Terminal     bool     `json:"terminal"`
	Args         []string `json:"args"`
	Env          []string `json:"env"`
	Capabilities *struct {
		Effective   []string `json:"effective"`
		Permitted   []string `json:"permitted"`
		Inheritable []string `json:"inheritable"`
		Ambient     []string `json:"ambient"`
	} `json:"capabilities"`
	OOMScoreAdj *int `json:"oomScoreAdj"`

	raw json.RawMessage
}

type ctrMount struct {
	Source  string   `json:"source"`
	Type    string   `json:"type"`
	Options []string `json:"options"`
}

// loadSpec reads the bundle's config.json, checks what a container cannot
// do without, and makes its relative paths absolute (the bundle's).
func loadSpec(bundle string) (*ctrSpec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, api.Errorf(api.ErrInvalid, "bundle: "+err.Error())
	}
	var top struct {
		ctrSpec
		Process json.RawMessage `json:"process"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json: "+err.Error())
	}
	spec := top.ctrSpec
	if len(top.Process) > 0 && string(top.Process) != "null" {
		spec.Process = &ctrProcess{raw: top.Process}
		if err := json.Unmarshal(top.Process, spec.Process); err != nil {
			return nil, api.Errorf(api.ErrInvalid, "bundle: config.json: process: "+err.Error())
		}
	}
	switch {
	case spec.Process == nil:
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json has no process")
	case len(spec.Process.Args) == 0:
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json: process.args is empty")
	case spec.Root == nil || spec.Root.Path == "":
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json has no root.path")
	case spec.Linux == nil:
		return nil, api.Errorf(api.ErrInvalid, "bundle: config.json has no linux section")
	}
	if !filepath.IsAbs(spec.Root.Path) {
		spec.Root.Path = filepath.Join(bundle, spec.Root.Path)
	}
	if fi, err := os.Stat(spec.Root.Path); err != nil || !fi.IsDir() {
		return nil, api.Errorf(api.ErrInvalid, fmt.Sprintf("bundle: root.path %s is not a directory", spec.Root.Path))
	}
	for i, m := range spec.Mounts {
		if m.Source != "" && !filepath.IsAbs(m.Source) && isBind(m) {
			spec.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
	return &spec, nil
}

func isBind(m ctrMount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// resources decodes the container's linux.resources (nil for none).
func (s *ctrSpec) resources() (*specs.LinuxResources, error) {
	if len(s.Linux.Resources) == 0 || string(s.Linux.Resources) == "null" {
		return nil, nil
	}
	var r specs.LinuxResources
	if err := json.Unmarshal(s.Linux.Resources, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// execProcessJSON is the container's process (user, capabilities,
// AppArmor, SELinux label, no_new_privs and the rest as in the spec)
// running args instead, with env, on a terminal of width x height with
// tty: the OCI process, in JSON, for the runtime's exec. Only the fields
// that change are decoded.
func (p *ctrProcess) execProcessJSON(args, env []string, tty bool, width, height uint16) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if err := json.Unmarshal(p.raw, &fields); err != nil {
		return nil, err
	}
	set := func(k string, v any) error {
		b, err := json.Marshal(v)
		fields[k] = b
		return err
	}
	delete(fields, "consoleSize")
	if tty && (width > 0 || height > 0) {
		if err := set("consoleSize", map[string]uint{"width": uint(width), "height": uint(height)}); err != nil {
			return nil, err
		}
	}
	for k, v := range map[string]any{"args": args, "env": env, "terminal": tty} {
		if err := set(k, v); err != nil {
			return nil, err
		}
	}
	return json.Marshal(fields)
}
