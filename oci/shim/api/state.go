package api

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// StatePath is where a shim in dir records container id.
func StatePath(dir, id string) string {
	return filepath.Join(dir, ContainersDir, id, StateFile)
}

// ReadState returns the last state the shim in dir recorded for container id.
// It works whether the shim runs or not: berthd uses it to report containers
// honestly after their shim died. A missing record gives an error that
// matches os.ErrNotExist.
func ReadState(dir, id string) (ContainerState, error) {
	if err := ValidateID(id); err != nil {
		return ContainerState{}, err
	}
	b, err := os.ReadFile(StatePath(dir, id))
	if err != nil {
		return ContainerState{}, fmt.Errorf("shim: read state of %s: %w", id, err)
	}
	var st ContainerState
	if err := json.Unmarshal(b, &st); err != nil {
		return ContainerState{}, fmt.Errorf("shim: read state of %s: %w", id, err)
	}
	return st, nil
}

// WriteState records st atomically: a reader sees either the previous
// record or this one, also after the shim is killed (temporary file,
// rename). The final record of a stopped container is also synced to disk;
// the created and running records are not, since a power loss ends the
// container with them, and the sync would sit on every container start.
func WriteState(dir string, st ContainerState) error {
	durable := st.Status == StatusStopped
	if err := ValidateID(st.ID); err != nil {
		return err
	}
	cdir := filepath.Join(dir, ContainersDir, st.ID)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return fmt.Errorf("shim: record state: %w", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("shim: record state: %w", err)
	}
	tmp, err := os.CreateTemp(cdir, ".state-*")
	if err != nil {
		return fmt.Errorf("shim: record state: %w", err)
	}
	name := tmp.Name()
	_, err = tmp.Write(b)
	if err == nil && durable {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, filepath.Join(cdir, StateFile))
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("shim: record state of %s: %w", st.ID, err)
	}
	if !durable {
		return nil
	}
	if d, err := os.Open(cdir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("shim: record state of %s: sync directory: %w", st.ID, err)
		}
	}
	return nil
}

// ValidateID checks a container ID the way libcontainer does, and so that
// it is safe as a single path element.
func ValidateID(id string) error {
	if id == "" {
		return Errorf(ErrInvalid, "id: must not be empty")
	}
	if len(id) > 1024 {
		return Errorf(ErrInvalid, "id: longer than 1024 bytes")
	}
	if id == "." || id == ".." {
		return Errorf(ErrInvalid, fmt.Sprintf("id: %q is not allowed", id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '+', c == '-', c == '.':
		default:
			return Errorf(ErrInvalid, fmt.Sprintf("id: %q has a character other than letters, digits, '_', '+', '-', '.'", id))
		}
	}
	return nil
}
