package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// update gives the container the OCI linux.resources in a file: "update
// --resources FILE ID". libcontainer's Set writes them to the cgroups
// (putting the old values back if the kernel refuses one) and records them
// in the container's state.
func update(g globalOpts, args []string) error {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	file := fs.String("resources", "", "the resources, OCI linux.resources in JSON")
	pos, err := parseCmd(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *file == "" {
		return errors.New("update: --resources is required")
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	var r specs.LinuxResources
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("resources: %w", err)
	}
	c, err := load(g, pos[0])
	if err != nil {
		return err
	}
	cfg, err := updatedConfig(c.Config(), pos[0], g.systemd, &r)
	if err != nil {
		return fmt.Errorf("resources: %w", err)
	}
	return c.Set(cfg)
}

// updatedConfig returns the container's libcontainer config with the cgroup
// resources converted from r, as at create (specconv), but the device rules
// it has now: an update never touches devices (runc's update skips them
// too).
func updatedConfig(cfg configs.Config, id string, systemd bool, r *specs.LinuxResources) (configs.Config, error) {
	if cfg.Cgroups == nil || cfg.Cgroups.Resources == nil {
		return cfg, errors.New("the container has no cgroup configuration")
	}
	// Only the resources of the conversion are used; the path is the
	// container's own.
	s := &specs.Spec{Linux: &specs.Linux{Resources: r}}
	if !systemd {
		s.Linux.CgroupsPath = cfg.Cgroups.Path
	}
	cg, err := specconv.CreateCgroupConfig(&specconv.CreateOpts{
		CgroupName:       id,
		UseSystemdCgroup: systemd,
		Spec:             s,
	}, nil)
	if err != nil {
		return cfg, err
	}
	// Copies: the config libcontainer holds shares these pointers and must
	// stay as it is if Set fails.
	cgroup := *cfg.Cgroups
	res := *cg.Resources
	res.Devices = cfg.Cgroups.Resources.Devices
	res.SkipDevices = true
	cgroup.Resources = &res
	cfg.Cgroups = &cgroup
	return cfg, nil
}
