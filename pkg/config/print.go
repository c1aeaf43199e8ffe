package config

import (
	"bytes"
	"fmt"

	"github.com/pelletier/go-toml/v2"
)

const header = `# berthd configuration (/etc/berth/berth.toml).
# Every key is shown with its default value; a missing file means these values.
# Unknown keys and bad values stop berthd at start with a message naming the key.
`

// Marshal renders cfg as commented TOML that Decode reads back unchanged.
func Marshal(cfg Config) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(false)
	enc.SetArraysMultiline(false)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return buf.Bytes(), nil
}
