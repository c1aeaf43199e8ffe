package main

import (
	"fmt"

	"github.com/berth-runtime/berth/test/testregistry"
)

// benchRepoHost is the registry both runtimes are asked for; their config
// sends it to the test registry, as on a node with a pull-through mirror.
const benchRepoHost = "docker.io"

// The pod benchmark's images: the container runs busybox, and containerd's
// sandbox (pause) container runs the pause image, busybox sleeping.
const (
	podImage     = "busybox"
	sandboxImage = "pause"
)

// startRegistry serves the named catalog images on an ephemeral loopback
// port.
func startRegistry(names []string) (*testregistry.Registry, error) {
	reg, err := testregistry.Start(testregistry.Options{Addr: "127.0.0.1:0", Images: names})
	if err != nil {
		return nil, fmt.Errorf("test registry: %w", err)
	}
	return reg, nil
}

// imageRef is the name both runtimes pull: docker.io/<repo>:<tag>.
func imageRef(img testregistry.ImageInfo) string {
	return benchRepoHost + "/" + img.Repo + ":" + img.Tag
}

// logDirFor is where a section's daemon logs are copied; empty when logs
// are not kept.
func logDirFor(logDir, section string) string {
	if logDir == "" {
		return ""
	}
	return logDir + "/" + section
}
