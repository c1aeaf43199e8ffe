// Package podfiles renders the per-pod files every container of a pod
// sees: /etc/resolv.conf, /etc/hosts and /etc/hostname.
//
// Rendering is pure: the host's own resolv.conf and hosts come in as bytes,
// so the caller decides where to read them and tests need no host state.
// Every value taken from the request is checked so that it stays on its own
// line: a server, search domain, option, hostname or pod IP that carries
// whitespace or a control character is a request error, never a second
// line in the file.
//
// A request error is a *FieldError naming the field of the CRI
// PodSandboxConfig at fault (for example "dns_config.searches"); it matches
// ErrInvalid with errors.Is.
package podfiles

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrInvalid is matched (errors.Is) by every error caused by the request.
var ErrInvalid = errors.New("invalid pod config")

// FieldError is a request error naming the field of the PodSandboxConfig at
// fault, spelled as in the protobuf definition.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

func indexed(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

// The kubelet's limits on the search list (MaxDNSSearchPaths and
// MaxDNSSearchListChars). glibc before 2.26 used only 6 domains and 256
// characters; newer versions take the whole list.
const (
	MaxSearches        = 32
	MaxSearchListChars = 2048
)

// File names inside the directory Write fills.
const (
	ResolvConfFile = "resolv.conf"
	HostsFile      = "hosts"
	HostnameFile   = "hostname"
)

// ResolvConf renders /etc/resolv.conf from the pod's DNS config. When dns is
// nil or has no servers, searches or options, hostResolv (the host's
// resolv.conf, as read by the caller) is returned unchanged: the kubelet
// sends a DNS config for its ClusterFirst and Default policies, and crictl
// often sends none, in which case the pod resolves like the host.
//
// All servers are written, in order. glibc uses only the first three
// (MAXNS); the kubelet never sends more, and other resolvers (musl, Go's)
// read the file too, so nothing is dropped here.
func ResolvConf(dns *runtimeapi.DNSConfig, hostResolv []byte) ([]byte, error) {
	servers, searches, options := dns.GetServers(), dns.GetSearches(), dns.GetOptions()
	if len(servers) == 0 && len(searches) == 0 && len(options) == 0 {
		return bytes.Clone(hostResolv), nil
	}

	for i, s := range servers {
		if err := checkServer(s); err != nil {
			return nil, fieldErr(indexed("dns_config.servers", i), "%v", err)
		}
	}
	if len(searches) > MaxSearches {
		return nil, fieldErr("dns_config.searches", "%d search domains, at most %d are allowed", len(searches), MaxSearches)
	}
	for i, s := range searches {
		if err := checkSearch(s); err != nil {
			return nil, fieldErr(indexed("dns_config.searches", i), "%v", err)
		}
	}
	if n := len(strings.Join(searches, " ")); n > MaxSearchListChars {
		return nil, fieldErr("dns_config.searches", "the search list is %d characters long, at most %d are allowed", n, MaxSearchListChars)
	}
	for i, o := range options {
		if err := checkOption(o); err != nil {
			return nil, fieldErr(indexed("dns_config.options", i), "%v", err)
		}
	}

	var b bytes.Buffer
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(searches) > 0 {
		b.WriteString("search " + strings.Join(searches, " ") + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.Bytes(), nil
}

// checkServer accepts an IPv4 or IPv6 address, an IPv6 one optionally with
// a zone ("fe80::1%eth0", which glibc understands).
func checkServer(s string) error {
	if err := checkToken(s); err != nil {
		return err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" && !isZone(a.Zone()) {
		return fmt.Errorf("%q has an invalid zone", s)
	}
	return nil
}

// isZone accepts an interface name or index: what a resolver can look up.
func isZone(z string) bool {
	if len(z) > 15 { // IFNAMSIZ - 1
		return false
	}
	for i := 0; i < len(z); i++ {
		c := z[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// checkSearch accepts a DNS name of labels made of letters, digits, '-' and
// '_' (underscores occur in real search domains), with an optional trailing
// dot.
func checkSearch(s string) error {
	if err := checkToken(s); err != nil {
		return err
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return fmt.Errorf("%q is not a DNS name", s)
	}
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s)
	}
	for _, l := range strings.Split(name, ".") {
		if err := checkLabel(l, true); err != nil {
			return fmt.Errorf("%q is not a DNS name: %v", s, err)
		}
	}
	return nil
}

// checkOption accepts one resolv.conf option such as "ndots:5" or "edns0".
// The resolver ignores options it does not know, so only the shape is
// checked.
func checkOption(o string) error {
	return checkToken(o)
}

// checkToken rejects what would break out of a single space-separated word
// on one line: empty values, whitespace and control characters.
func checkToken(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == 0x85 || r == 0xa0 || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%q contains whitespace or a control character", s)
		}
	}
	return nil
}

// checkLabel checks one DNS label: 1 to 63 characters, letters, digits and
// '-' (and '_' when underscore is true), not starting or ending with '-'.
func checkLabel(l string, underscore bool) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return fmt.Errorf("label %q is longer than 63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !isAlnum(c) && c != '-' && (!underscore || c != '_') {
			return fmt.Errorf("label %q contains %q", l, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// MaxHostnameLen is the longest name the UTS namespace holds
// (__NEW_UTS_LEN). The kubelet sends at most 63 characters, or a fully
// qualified name of up to 64 with setHostnameAsFQDN.
const MaxHostnameLen = 64

// ValidateHostname checks a pod hostname: one or more RFC 1123 labels
// joined by dots, at most MaxHostnameLen characters in all. Upper case is
// accepted: a pod without a hostname of its own takes the host's, which may
// have it.
func ValidateHostname(h string) error {
	if h == "" {
		return fieldErr("hostname", "empty")
	}
	if len(h) > MaxHostnameLen {
		return fieldErr("hostname", "%q is longer than %d characters", h, MaxHostnameLen)
	}
	for _, l := range strings.Split(h, ".") {
		if err := checkLabel(l, false); err != nil {
			return fieldErr("hostname", "%q is not an RFC 1123 hostname: %v", h, err)
		}
	}
	return nil
}

// localhostEntries are the lines every pod's /etc/hosts starts with; the
// same as the kubelet's managed hosts file.
const localhostEntries = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

// Hosts renders /etc/hosts: the localhost entries, then one
// "<podIP>\t<hostname>" line per pod IP. A host-network pod sees the host's
// names, so hostHosts (the host's /etc/hosts) is returned unchanged and the
// other arguments are not looked at.
func Hosts(hostname string, podIPs []string, hostNetwork bool, hostHosts []byte) ([]byte, error) {
	if hostNetwork {
		return bytes.Clone(hostHosts), nil
	}
	if err := ValidateHostname(hostname); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(localhostEntries)
	for i, ip := range podIPs {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			// Pod IPs come from the network plugin, not the request.
			return nil, fmt.Errorf("pod IP %d: %q is not an IP address", i, ip)
		}
		b.WriteString(ip + "\t" + hostname + "\n")
	}
	return b.Bytes(), nil
}

// Hostname renders /etc/hostname.
func Hostname(h string) ([]byte, error) {
	if err := ValidateHostname(h); err != nil {
		return nil, err
	}
	return []byte(h + "\n"), nil
}
