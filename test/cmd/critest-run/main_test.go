package main

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/pkg/config"
)

// failedRun is the end of a critest run with failures, as printed with
// --ginkgo.no-color.
const failedRun = `------------------------------
• [FAILED] [0.006 seconds]
[k8s.io] PodSandbox runtime should support metrics operations [It] runtime should support returning metrics descriptors [Conformance]
  [FAILED] in [It] - /tmp/x/pkg/validate/pod.go:449 @ 11/28/26 04:31:37.065
------------------------------

Summarizing 3 Failures:
  [FAIL] [k8s.io] Security Context bucket [It] runtime should support MaskedPaths
  /tmp/crt/cri-tools.L4QnPD/pkg/framework/util.go:341
  [FAIL] [k8s.io] PodSandbox runtime should support metrics operations [It] runtime should support returning metrics descriptors [Conformance]
  /tmp/crt/cri-tools.L4QnPD/pkg/validate/pod.go:449
  [TIMEDOUT] [k8s.io] Streaming [It] runtime should support attach [Conformance]
  /tmp/crt/cri-tools.L4QnPD/pkg/validate/streaming.go:111

Ran 97 of 142 Specs in 75.588 seconds
FAIL! -- 94 Passed | 3 Failed | 0 Pending | 45 Skipped
--- FAIL: TestCRISuite (75.71s)
FAIL
`

func TestParseSummaryFailures(t *testing.T) {
	s, err := parseSummary(strings.NewReader(failedRun))
	if err != nil {
		t.Fatal(err)
	}
	want := summary{Ran: 97, Total: 142, Passed: 94, Failed: 3, Skipped: 45, Found: true, Failures: []string{
		"[FAIL] [k8s.io] Security Context bucket [It] runtime should support MaskedPaths",
		"[FAIL] [k8s.io] PodSandbox runtime should support metrics operations [It] runtime should support returning metrics descriptors [Conformance]",
		"[TIMEDOUT] [k8s.io] Streaming [It] runtime should support attach [Conformance]",
	}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if got := s.String(); got != "94 passed, 3 failed, 45 skipped, 0 pending (ran 97 of 142 specs)" {
		t.Errorf("String() = %q", got)
	}
}

func TestParseSummarySuccess(t *testing.T) {
	out := "Will run 10 of 142 specs\nSSS•••\n\nRan 10 of 142 Specs in 12.065 seconds\n" +
		"SUCCESS! -- 10 Passed | 0 Failed | 0 Pending | 132 Skipped\nPASS\n"
	s, err := parseSummary(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := summary{Ran: 10, Total: 142, Passed: 10, Skipped: 132, Found: true}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseSummaryMissing(t *testing.T) {
	// A crash before the end: no counts, which the runner treats as a
	// failure even if the exit code were 0.
	s, err := parseSummary(strings.NewReader("panic: boom\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Found || s.String() != "critest printed no summary" {
		t.Errorf("got %+v", s)
	}
}

// The skip list must skip exactly the specs it is meant for: a pattern
// that also caught, say, every Security Context spec would make the suite
// pass by running less.
func TestSkipRegexp(t *testing.T) {
	re := regexp.MustCompile(skipRegexp())
	for _, name := range []string{
		"[k8s.io] AppArmor runtime should support apparmor field should enforce a apparmor_profile blocking writes",
		"[k8s.io] NRI container lifecycle should receive CreateContainer, StartContainer, StopContainer, and RemoveContainer in strict order with correct metadata",
		"[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance]",
	} {
		if !re.MatchString(name) {
			t.Errorf("not skipped: %s", name)
		}
	}
	for _, name := range []string{
		"[k8s.io] Image Manager public image with tag should be pulled and removed [Conformance]",
		"[k8s.io] Image Manager public image without tag should be pulled and removed [Conformance]",
		"[k8s.io] Image Manager image status should support all kinds of references [Conformance]",
		"[k8s.io] Security Context NoNewPrivs should not allow privilege escalation when true",
		"[k8s.io] Streaming runtime should support streaming interfaces runtime should support portforward [Conformance]",
		"[k8s.io] Security Context UserNamespaces when Host idmap mount support is needed runtime should support NamespaceMode_POD",
		"[k8s.io] Image Volume [Feature:ImageVolume] should correctly mount image and enforce read-only",
	} {
		if re.MatchString(name) {
			t.Errorf("skipped: %s", name)
		}
	}
	for _, s := range skips {
		if s.reason == "" {
			t.Errorf("skip %q has no reason", s.pattern)
		}
	}
}

func TestPortmapIDs(t *testing.T) {
	listing := `-P PREROUTING ACCEPT
-N CNI-DN-1234
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"berth-critest-abc\" id: \"pod1\"" -m multiport --dports 12000 -j CNI-DN-1234
-A CNI-DN-1234 -p tcp -m comment --comment "dnat name: \"berth-critest-abc\" id: \"pod1\"" -j DNAT --to-destination 10.99.3.2:80
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"someone-else\" id: \"pod2\"" -j CNI-DN-5678
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"berth-critest-abc\" id: \"pod3\"" -j CNI-DN-9
`
	got := portmapIDs(listing, "berth-critest-abc")
	if want := []string{"pod1", "pod3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The config is read by berthd's own loader, which refuses unknown keys.
func TestDaemonConfig(t *testing.T) {
	text := daemonConfig("/d/auth.json", "/d/net/net.d", "/berth-critest-x", "http://127.0.0.1:4242",
		[]string{"gcr.io", "registry.k8s.io"})
	cfg := config.Default()
	if err := config.Decode([]byte(text), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if cfg.Network.ConfDir != "/d/net/net.d" || cfg.Image.AuthFile != "/d/auth.json" {
		t.Errorf("conf_dir %q, auth_file %q from\n%s", cfg.Network.ConfDir, cfg.Image.AuthFile, text)
	}
	r := cfg.Runtime
	if r.DaemonCgroup != "/berth-critest-x/daemon" || r.ShimCgroup != "/berth-critest-x/shims" || r.PodCgroup != "/berth-critest-x/pods" {
		t.Errorf("cgroups %q %q %q", r.DaemonCgroup, r.ShimCgroup, r.PodCgroup)
	}
	if len(cfg.Registries) != 2 {
		t.Errorf("registries %+v", cfg.Registries)
	}
	for _, h := range []string{"gcr.io", "registry.k8s.io"} {
		if cfg.Registries[h].Endpoint != "http://127.0.0.1:4242" {
			t.Errorf("registry %s: %+v", h, cfg.Registries[h])
		}
	}
}
