package podfiles

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FileMode is the mode of every file Write makes: containers running as
// any user must be able to read them.
const FileMode = 0o644

// Write writes each file of files (a base name such as ResolvConfFile,
// HostsFile or HostnameFile, and its content) into dir, creating dir if
// needed. Each file is replaced atomically: written to a temporary file in
// dir, then renamed over the old one, so a reader (or a crash of berthd)
// never sees half a file. Nothing is synced to disk: the files live under
// the state dir and end with the pod, which a power loss ends too, and a
// sync would cost milliseconds on every pod start.
//
// Containers bind-mount these files by inode; a file replaced after a
// container started is not seen by it. Write them before the first
// container starts.
func Write(dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for name := range files {
		if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0) {
			return fmt.Errorf("podfiles: invalid file name %q", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("podfiles: %w", err)
	}
	for _, name := range names {
		if err := writeFile(dir, name, files[name]); err != nil {
			return fmt.Errorf("podfiles: write %s: %w", filepath.Join(dir, name), err)
		}
	}
	return nil
}

func writeFile(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; set the mode explicitly so the umask
	// plays no part.
	if err = f.Chmod(FileMode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}
