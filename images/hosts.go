package images

import (
	"net/url"

	"github.com/berth-runtime/berth/pkg/config"
)

// host is one address a registry's content is fetched from.
type host struct {
	Host     string // host[:port] as used in URLs
	Insecure bool   // plain HTTP or unverified TLS allowed
	Mirror   bool
}

// defaultHosts maps registry names to where they are reached when the
// config says nothing, as Docker clients do.
var defaultHosts = map[string]string{"docker.io": "registry-1.docker.io"}

// hostsFor lists, in order, where a registry's images are fetched from:
// its mirrors, then the registry itself (its endpoint when configured). It
// is a pure function of the config so the order is easy to test.
func hostsFor(domain string, regs map[string]config.Registry) []host {
	r := regs[domain]
	var hosts []host
	for _, m := range r.Mirrors {
		u, err := url.Parse(m)
		if err != nil {
			continue // Validate refused it already
		}
		hosts = append(hosts, host{Host: u.Host, Insecure: u.Scheme == "http" || r.Insecure, Mirror: true})
	}
	self := host{Host: domain, Insecure: r.Insecure}
	if d, ok := defaultHosts[domain]; ok {
		self.Host = d
	}
	if r.Endpoint != "" {
		if u, err := url.Parse(r.Endpoint); err == nil {
			self = host{Host: u.Host, Insecure: u.Scheme == "http" || r.Insecure}
		}
	}
	return append(hosts, self)
}
