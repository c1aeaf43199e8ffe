package podfiles

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const hostResolv = "# host\nnameserver 10.0.0.2\nsearch corp.example\n"

func TestResolvConf(t *testing.T) {
	many := func(n int, f func(i int) string) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return s
	}
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) // 191 chars
	// 10*191 + 128 + 10 separating spaces = 2048 characters.
	full := append(many(10, func(int) string { return long }), strings.Repeat("d", 63)+"."+strings.Repeat("d", 63)+".")
	cases := []struct {
		name  string
		dns   *runtimeapi.DNSConfig
		want  string
		field string // non-empty: a FieldError naming this field
	}{
		{name: "nil uses host", dns: nil, want: hostResolv},
		{name: "empty uses host", dns: &runtimeapi.DNSConfig{}, want: hostResolv},
		{
			name: "full",
			dns: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10", "2001:db8::53"},
				Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local."},
				Options:  []string{"ndots:5", "edns0"},
			},
			want: "nameserver 10.96.0.10\nnameserver 2001:db8::53\n" +
				"search default.svc.cluster.local svc.cluster.local cluster.local.\n" +
				"options ndots:5 edns0\n",
		},
		{
			name: "servers only",
			dns:  &runtimeapi.DNSConfig{Servers: []string{"8.8.8.8"}},
			want: "nameserver 8.8.8.8\n",
		},
		{
			name: "searches only",
			dns:  &runtimeapi.DNSConfig{Searches: []string{"my_corp.example"}},
			want: "search my_corp.example\n",
		},
		{
			name: "more than three servers are all kept",
			dns:  &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"}},
			want: "nameserver 1.1.1.1\nnameserver 1.0.0.1\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n",
		},
		{
			name: "zoned v6 server",
			dns:  &runtimeapi.DNSConfig{Servers: []string{"fe80::1%eth0"}},
			want: "nameserver fe80::1%eth0\n",
		},
		{
			name: "2048 chars are fine",
			dns:  &runtimeapi.DNSConfig{Searches: full},
			want: "search " + strings.Join(full, " ") + "\n",
		},

		{name: "server injection", dns: &runtimeapi.DNSConfig{Servers: []string{"8.8.8.8\nnameserver 1.2.3.4"}}, field: "dns_config.servers[0]"},
		{name: "server CR injection", dns: &runtimeapi.DNSConfig{Servers: []string{"8.8.8.8", "8.8.4.4\r"}}, field: "dns_config.servers[1]"},
		{name: "server name", dns: &runtimeapi.DNSConfig{Servers: []string{"dns.google"}}, field: "dns_config.servers[0]"},
		{name: "server empty", dns: &runtimeapi.DNSConfig{Servers: []string{""}}, field: "dns_config.servers[0]"},
		{name: "server with port", dns: &runtimeapi.DNSConfig{Servers: []string{"8.8.8.8:53"}}, field: "dns_config.servers[0]"},
		{name: "server zone injection", dns: &runtimeapi.DNSConfig{Servers: []string{"fe80::1%eth0\nsearch x"}}, field: "dns_config.servers[0]"},
		{name: "server zone odd", dns: &runtimeapi.DNSConfig{Servers: []string{"fe80::1%a;b"}}, field: "dns_config.servers[0]"},
		{name: "search space", dns: &runtimeapi.DNSConfig{Searches: []string{"a b"}}, field: "dns_config.searches[0]"},
		{name: "search newline", dns: &runtimeapi.DNSConfig{Searches: []string{"ok.example", "a\nnameserver 1.2.3.4"}}, field: "dns_config.searches[1]"},
		{name: "search tab", dns: &runtimeapi.DNSConfig{Searches: []string{"a\tb"}}, field: "dns_config.searches[0]"},
		{name: "search empty label", dns: &runtimeapi.DNSConfig{Searches: []string{"a..b"}}, field: "dns_config.searches[0]"},
		{name: "search dash", dns: &runtimeapi.DNSConfig{Searches: []string{"-a.example"}}, field: "dns_config.searches[0]"},
		{name: "search dot only", dns: &runtimeapi.DNSConfig{Searches: []string{"."}}, field: "dns_config.searches[0]"},
		{name: "search label too long", dns: &runtimeapi.DNSConfig{Searches: []string{strings.Repeat("a", 64)}}, field: "dns_config.searches[0]"},
		{name: "search unicode space", dns: &runtimeapi.DNSConfig{Searches: []string{"a\u2028b"}}, field: "dns_config.searches[0]"},
		{name: "32 searches are fine", dns: &runtimeapi.DNSConfig{Searches: many(32, func(int) string { return "a.example" })}, want: "search " + strings.TrimSpace(strings.Repeat("a.example ", 32)) + "\n"},
		{name: "33 searches", dns: &runtimeapi.DNSConfig{Searches: many(33, func(int) string { return "a.example" })}, field: "dns_config.searches"},
		{name: "2050 chars", dns: &runtimeapi.DNSConfig{Searches: append(slices.Clone(full), "x")}, field: "dns_config.searches"},
		{name: "option newline", dns: &runtimeapi.DNSConfig{Options: []string{"ndots:5\nx"}}, field: "dns_config.options[0]"},
		{name: "option space", dns: &runtimeapi.DNSConfig{Options: []string{"edns0", "ndots:5 rotate"}}, field: "dns_config.options[1]"},
		{name: "option empty", dns: &runtimeapi.DNSConfig{Options: []string{""}}, field: "dns_config.options[0]"},
		{name: "option NUL", dns: &runtimeapi.DNSConfig{Options: []string{"ndots:5\x00"}}, field: "dns_config.options[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolvConf(c.dns, []byte(hostResolv))
			if c.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want a FieldError for %s", err, c.field)
				}
				if got != nil {
					t.Fatalf("output %q with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestResolvConfHostCopy(t *testing.T) {
	host := []byte(hostResolv)
	got, err := ResolvConf(nil, host)
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'X'
	if host[0] != '#' {
		t.Fatal("ResolvConf returned the caller's slice")
	}
	if got, err := ResolvConf(nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("nil host resolv.conf: %q, %v", got, err)
	}
}

// A rendered file has exactly one line per directive, whatever the input.
func TestResolvConfLineCount(t *testing.T) {
	dns := &runtimeapi.DNSConfig{
		Servers:  []string{"10.0.0.1", "10.0.0.2", "::1"},
		Searches: []string{"a.example", "b.example"},
		Options:  []string{"ndots:2", "timeout:1", "attempts:3"},
	}
	got, err := ResolvConf(dns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), "\n"); n != 5 {
		t.Fatalf("%d lines in %q", n, got)
	}
}

const localhost = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

func TestHosts(t *testing.T) {
	const hostHosts = "127.0.0.1 localhost\n192.168.1.5 node1\n"
	cases := []struct {
		name        string
		hostname    string
		ips         []string
		hostNetwork bool
		want        string
		wantErr     bool
		field       string
	}{
		{name: "no ips", hostname: "pod", want: localhost},
		{name: "v4", hostname: "web-0", ips: []string{"10.88.0.5"}, want: localhost + "10.88.0.5\tweb-0\n"},
		{name: "dual stack", hostname: "web-0.svc", ips: []string{"10.88.0.5", "fd00::5"}, want: localhost + "10.88.0.5\tweb-0.svc\nfd00::5\tweb-0.svc\n"},
		{name: "host network", hostname: "ignored", ips: []string{"bogus"}, hostNetwork: true, want: hostHosts},
		{name: "host network, invalid hostname ignored", hostname: "a b", hostNetwork: true, want: hostHosts},
		{name: "hostname injection", hostname: "pod\n1.2.3.4 evil", field: "hostname"},
		{name: "hostname space", hostname: "a b", field: "hostname"},
		{name: "hostname empty", hostname: "", field: "hostname"},
		{name: "ip injection", hostname: "pod", ips: []string{"10.0.0.1\tevil\n1.2.3.4"}, wantErr: true},
		{name: "ip zone", hostname: "pod", ips: []string{"fe80::1%eth0"}, wantErr: true},
		{name: "ip empty", hostname: "pod", ips: []string{""}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Hosts(c.hostname, c.ips, c.hostNetwork, []byte(hostHosts))
			if c.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != c.field {
					t.Fatalf("err = %v, want a FieldError for %s", err, c.field)
				}
				return
			}
			if c.wantErr {
				if err == nil {
					t.Fatalf("no error, got %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestValidateHostname(t *testing.T) {
	good := []string{
		"a", "pod", "web-0", "Node1", "a.b.c", "x1-y2",
		strings.Repeat("a", 63),
		strings.Repeat("a", 31) + "." + strings.Repeat("b", 32), // 64 chars
	}
	for _, h := range good {
		if err := ValidateHostname(h); err != nil {
			t.Errorf("%q: %v", h, err)
		}
	}
	bad := []string{
		"", " ", "a b", "a\nb", "a\tb", "-a", "a-", "a..b", ".a", "a.", "a_b", "a/b", "a:b",
		strings.Repeat("a", 64),                                 // label too long
		strings.Repeat("a", 32) + "." + strings.Repeat("b", 32), // 65 chars
		"héllo",
	}
	for _, h := range bad {
		err := ValidateHostname(h)
		if err == nil {
			t.Errorf("%q accepted", h)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "hostname: ") {
			t.Errorf("%q: error %v does not name the hostname field", h, err)
		}
	}
}

func TestHostname(t *testing.T) {
	got, err := Hostname("web-0")
	if err != nil || string(got) != "web-0\n" {
		t.Fatalf("%q, %v", got, err)
	}
	if _, err := Hostname("a\nb"); err == nil {
		t.Fatal("injection accepted")
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pod", "files")
	hn, _ := Hostname("web-0")
	files := map[string][]byte{
		ResolvConfFile: []byte("nameserver 10.0.0.1\n"),
		HostsFile:      []byte(localhost),
		HostnameFile:   hn,
	}
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	check := func(files map[string][]byte) {
		t.Helper()
		for name, want := range files {
			p := filepath.Join(dir, name)
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != FileMode {
				t.Errorf("%s mode %v", name, st.Mode())
			}
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 3 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("dir holds %v, want only the three files", names)
		}
	}
	check(files)

	// Replacing keeps the mode and leaves no temporary files; an existing
	// file with another mode is replaced, not rewritten in place.
	if err := os.Chmod(filepath.Join(dir, HostsFile), 0o600); err != nil {
		t.Fatal(err)
	}
	files[HostsFile] = []byte(localhost + "10.0.0.9\tweb-0\n")
	files[ResolvConfFile] = nil
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	check(files)
}

func TestWriteBadName(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b", "../hosts", "x\x00"} {
		if err := Write(dir, map[string][]byte{name: []byte("x")}); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
}

func TestWriteError(t *testing.T) {
	// A directory where a file should go makes the rename fail; the
	// temporary file must not be left behind.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, HostsFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HostsFile, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, map[string][]byte{HostsFile: []byte("x")}); err == nil {
		t.Fatal("no error")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != HostsFile {
		t.Fatalf("dir holds %v", ents)
	}
}
