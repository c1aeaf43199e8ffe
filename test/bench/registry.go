package main

import (
	"fmt"

	"github.com/berth-runtime/berth/test/testregistry"
)

// benchRepoHost is the registry both runtimes are asked for; their config
// sends it to the test registry, as on a node with a pull-through mirror.
const benchRepoHost = "docker.io"

// startRegistry serves only the measured image, on an ephemeral loopback
// port.
func startRegistry(name string) (*testregistry.Registry, testregistry.ImageInfo, error) {
	reg, err := testregistry.Start(testregistry.Options{Addr: "127.0.0.1:0", Images: []string{name}})
	if err != nil {
		return nil, testregistry.ImageInfo{}, fmt.Errorf("test registry: %w", err)
	}
	return reg, reg.Image(name), nil
}

// imageRef is the name both runtimes pull: docker.io/<repo>:<tag>.
func imageRef(img testregistry.ImageInfo) string {
	return benchRepoHost + "/" + img.Repo + ":" + img.Tag
}
