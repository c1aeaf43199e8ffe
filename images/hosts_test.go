package images

import (
	"reflect"
	"testing"

	"github.com/berth-runtime/berth/pkg/config"
)

func TestHostsFor(t *testing.T) {
	regs := map[string]config.Registry{
		"docker.io":             {Mirrors: []string{"http://127.0.0.1:5000", "https://mirror.example"}, Endpoint: "http://127.0.0.1:5001"},
		"registry.example:5000": {Insecure: true},
		"quay.io":               {Mirrors: []string{"https://m.example:444"}},
	}
	cases := []struct {
		domain string
		want   []host
	}{
		{"docker.io", []host{{"127.0.0.1:5000", true, true}, {"mirror.example", false, true}, {"127.0.0.1:5001", true, false}}},
		{"registry.example:5000", []host{{"registry.example:5000", true, false}}},
		{"quay.io", []host{{"m.example:444", false, true}, {"quay.io", false, false}}},
		{"ghcr.io", []host{{"ghcr.io", false, false}}},
	}
	for _, c := range cases {
		if got := hostsFor(c.domain, regs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v want %+v", c.domain, got, c.want)
		}
	}
	if got := hostsFor("docker.io", nil); !reflect.DeepEqual(got, []host{{"registry-1.docker.io", false, false}}) {
		t.Errorf("docker.io default: %+v", got)
	}
}
