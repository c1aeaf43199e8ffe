package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockRoot takes an exclusive lock on <root>/berth.lock for the life of the
// process, so a second berthd on the same root refuses to start instead of
// sharing its store. The kernel drops the lock when the process dies, even
// by kill -9.
func lockRoot(root string) (*os.File, error) {
	path := filepath.Join(root, "berth.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		data, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(data))
		if holder == "" {
			holder = "unknown"
		}
		return nil, fmt.Errorf("another berthd (pid %s) is using root %s", holder, root)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
