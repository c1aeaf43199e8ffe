package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// BuiltinHandlers are the names of the built-in runtime handler
// (libcontainer inside each pod's monitor); a configured handler may not
// take them.
var BuiltinHandlers = []string{"", "berth"}

// checkHandlers checks the form of the configured runtime handlers; whether
// their binaries exist is CheckHandlerBinaries'.
func checkHandlers(hs map[string]RuntimeHandler) error {
	for name, h := range hs {
		if slices.Contains(BuiltinHandlers, name) {
			return fmt.Errorf("config: runtime.handlers.%q: the name is reserved for the built-in handler", name)
		}
		// A handler name is a DNS label in RuntimeClass; anything printable
		// without '/' or whitespace is accepted here.
		if strings.ContainsAny(name, "/ \t\n\x00") {
			return fmt.Errorf("config: runtime.handlers.%q: a handler name has no '/' or whitespace", name)
		}
		if !filepath.IsAbs(h.Path) {
			return fmt.Errorf("config: runtime.handlers.%q.path: %q must be an absolute path", name, h.Path)
		}
		if h.Root != "" && !filepath.IsAbs(h.Root) {
			return fmt.Errorf("config: runtime.handlers.%q.root: %q must be an absolute path or empty", name, h.Root)
		}
	}
	return nil
}

// CheckHandlerBinaries checks that every configured handler's binary is an
// executable regular file, so that a typo stops berthd at start rather
// than failing the first pod that asks for the handler.
func (c *Config) CheckHandlerBinaries() error {
	names := make([]string, 0, len(c.Runtime.Handlers))
	for name := range c.Runtime.Handlers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := c.Runtime.Handlers[name].Path
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("config: runtime.handlers.%q.path: %v", name, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("config: runtime.handlers.%q.path: %s is not an executable file", name, p)
		}
	}
	return nil
}
