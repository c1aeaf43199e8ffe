package api

import (
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxSocketPath is what a unix socket address holds (sun_path less the
// terminating NUL).
const maxSocketPath = 107

// SocketAddr returns an address for the control socket in dir that fits a
// unix socket address, with a release func to call once the bind or
// connect is done. A long dir (a state_dir such as /tmp/x/state plus a
// 64-hex pod ID overflows the 107 bytes) is reached through an O_PATH
// descriptor: /proc/self/fd/N/shim.sock names the same file in few bytes.
func SocketAddr(dir string) (string, func(), error) {
	full := filepath.Join(dir, SocketName)
	if len(full) <= maxSocketPath {
		return full, func() {}, nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + SocketName, func() { unix.Close(fd) }, nil
}
