package e2e

import "github.com/berth-runtime/berth/test/testregistry"

func testregistryOptions() testregistry.Options { return testregistry.Options{Addr: "127.0.0.1:0"} }
