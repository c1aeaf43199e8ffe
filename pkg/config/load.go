package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// DefaultPath is where berthd looks for its config file.
const DefaultPath = "/etc/berth/berth.toml"

// Load reads the file at path over the defaults. A missing file at the
// default path means defaults; a missing file named explicitly is an error,
// since an operator who names a file expects it to be read.
func Load(path string, explicit bool) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return cfg, cfg.Validate()
		}
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := Decode(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, cfg.CheckHandlerBinaries()
}

// Decode parses TOML into cfg, refusing keys that berthd does not know so
// that a typo is not silently ignored.
func Decode(data []byte, cfg *Config) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var missing *toml.StrictMissingError
		if errors.As(err, &missing) {
			keys := make([]string, 0, len(missing.Errors))
			for _, e := range missing.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			if k := de.Key(); len(k) > 0 {
				return fmt.Errorf("key %s (line %d, column %d): %v", strings.Join(k, "."), row, col, de.Error())
			}
			return fmt.Errorf("line %d, column %d: %v", row, col, de.Error())
		}
		return err
	}
	if cfg.Registries == nil {
		cfg.Registries = map[string]Registry{}
	}
	if cfg.Runtime.Handlers == nil {
		cfg.Runtime.Handlers = map[string]RuntimeHandler{}
	}
	return nil
}
