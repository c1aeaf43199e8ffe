package server

import (
	"crypto/rand"
	"encoding/hex"
)

// newID returns a 64-hex-digit ID, the form kubelet and crictl expect.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // the kernel's random source does not fail
	}
	return hex.EncodeToString(b[:])
}
