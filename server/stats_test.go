package server

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	statedb "github.com/berth-runtime/berth/pkg/store"
	"github.com/berth-runtime/berth/server/store"
)

const netDevSample = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  eth0:    4562      31    3    0    0     0          0         0     1306      12    7    0    0     0       0          0
 net1: 18446744073709551615 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0
`

func TestParseNetDev(t *testing.T) {
	got, err := parseNetDev(netDevSample)
	if err != nil {
		t.Fatal(err)
	}
	want := []netDevStats{
		{name: "lo", rxBytes: 120, rxPackets: 2, txBytes: 120, txPackets: 2},
		{name: "eth0", rxBytes: 4562, rxPackets: 31, rxErrors: 3, txBytes: 1306, txPackets: 12, txErrors: 7},
		{name: "net1", rxBytes: math.MaxUint64, rxPackets: 1, txBytes: 5, txPackets: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d interfaces %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("interface %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseNetDevErrors(t *testing.T) {
	header := "h1\nh2\n"
	for _, text := range []string{
		header + "eth0 1 2 3\n",
		header + "eth0: 1 2 3\n",
		header + "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n",
		header + "eth0: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
	} {
		if got, err := parseNetDev(text); err == nil {
			t.Errorf("parseNetDev(%q) = %+v, want an error", text, got)
		}
	}
	if got, err := parseNetDev(header); err != nil || len(got) != 0 {
		t.Errorf("headers only: %+v, %v", got, err)
	}
}

func TestNetworkUsage(t *testing.T) {
	ifaces, _ := parseNetDev(netDevSample)
	u := networkUsage(42, ifaces)
	if u.Timestamp != 42 {
		t.Errorf("timestamp %d", u.Timestamp)
	}
	d := u.GetDefaultInterface()
	if d.GetName() != "eth0" || d.GetRxBytes().GetValue() != 4562 || d.GetTxBytes().GetValue() != 1306 || d.GetRxErrors().GetValue() != 3 || d.GetTxErrors().GetValue() != 7 {
		t.Errorf("default interface %v", d)
	}
	var names []string
	for _, i := range u.GetInterfaces() {
		names = append(names, i.GetName())
	}
	if len(names) != 2 || names[0] != "eth0" || names[1] != "net1" {
		t.Errorf("interfaces %v, want [eth0 net1] (no lo)", names)
	}
	if u := networkUsage(1, []netDevStats{{name: "lo"}}); u.DefaultInterface != nil || len(u.Interfaces) != 0 {
		t.Errorf("loopback only: %v", u)
	}
}

func TestCPURate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		name   string
		prev   uint64
		prevAt time.Time
		cur    uint64
		curAt  time.Time
		want   uint64
		ok     bool
	}{
		{"one core", 0, t0, 10e9, t0.Add(10 * time.Second), 1e9, true},
		{"half a core", 5e9, t0, 5e9 + 5e8, t0.Add(time.Second), 5e8, true},
		{"idle", 7, t0, 7, t0.Add(time.Second), 0, true},
		// 64 cores busy for 10 s: the product with 1e9 overflows uint64.
		{"many cores", 0, t0, 640e9, t0.Add(10 * time.Second), 64e9, true},
		{"no previous", 0, time.Time{}, 5, t0, 0, false},
		{"counter reset", 10, t0, 5, t0.Add(time.Second), 0, false},
		{"same time", 1, t0, 5, t0, 0, false},
		{"back in time", 1, t0, 5, t0.Add(-time.Second), 0, false},
	} {
		got, ok := cpuRate(c.prev, c.prevAt, c.cur, c.curAt)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestStatsFilters(t *testing.T) {
	c := &store.Container{ID: "abc123", PodID: "pod456"}
	labels := map[string]string{"app": "web", "tier": "front"}
	for _, tc := range []struct {
		f    *runtimeapi.ContainerStatsFilter
		want bool
	}{
		{nil, true},
		{&runtimeapi.ContainerStatsFilter{}, true},
		{&runtimeapi.ContainerStatsFilter{Id: "abc"}, true},
		{&runtimeapi.ContainerStatsFilter{Id: "abd"}, false},
		{&runtimeapi.ContainerStatsFilter{PodSandboxId: "pod4"}, true},
		{&runtimeapi.ContainerStatsFilter{PodSandboxId: "pod5"}, false},
		{&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"app": "web"}}, true},
		{&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"app": "db"}}, false},
		{&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"other": ""}}, true},
		{&runtimeapi.ContainerStatsFilter{Id: "abc", PodSandboxId: "pod", LabelSelector: map[string]string{"tier": "front"}}, true},
		{&runtimeapi.ContainerStatsFilter{Id: "abc", PodSandboxId: "x"}, false},
	} {
		if got := ctrStatsMatch(tc.f, c, labels); got != tc.want {
			t.Errorf("container filter %v: %v, want %v", tc.f, got, tc.want)
		}
	}
	p := &store.Pod{ID: "pod456"}
	for _, tc := range []struct {
		f    *runtimeapi.PodSandboxStatsFilter
		want bool
	}{
		{nil, true},
		{&runtimeapi.PodSandboxStatsFilter{Id: "pod456"}, true},
		{&runtimeapi.PodSandboxStatsFilter{Id: "pod"}, true},
		{&runtimeapi.PodSandboxStatsFilter{Id: "pod457"}, false},
		{&runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "web"}}, true},
		{&runtimeapi.PodSandboxStatsFilter{Id: "pod", LabelSelector: map[string]string{"app": "db"}}, false},
	} {
		if got := podStatsMatch(tc.f, p, labels); got != tc.want {
			t.Errorf("pod filter %v: %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestContainerCgroup(t *testing.T) {
	for _, c := range []struct{ driver, parent, want string }{
		{"cgroupfs", "", "/berth/c1"},
		{"cgroupfs", "/kubepods/pod1", "/kubepods/pod1/c1"},
		{"systemd", "", "/system.slice/berth-c1.scope"},
		{"systemd", "kubepods-burstable-pod1.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/berth-c1.scope"},
		{"systemd", "-.slice", "/berth-c1.scope"},
	} {
		got, err := containerCgroup(c.driver, c.parent, "c1")
		if err != nil || got != c.want {
			t.Errorf("containerCgroup(%q, %q) = %q, %v; want %q", c.driver, c.parent, got, err, c.want)
		}
	}
	if _, err := containerCgroup("systemd", "/not/a/slice", "c1"); err == nil {
		t.Error("a path as systemd parent: no error")
	}
}

func TestDirUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "a", "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// A hard link is one inode and its blocks count once.
	if err := os.Link(big, filepath.Join(dir, "a", "b", "link")); err != nil {
		t.Fatal(err)
	}
	u, err := dirUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// dir, a, a/b, big.
	if u.inodes != 4 {
		t.Errorf("inodes %d, want 4", u.inodes)
	}
	if u.bytes < 1<<20 || u.bytes > 2<<20 {
		t.Errorf("bytes %d, want about 1 MiB", u.bytes)
	}
	if _, err := dirUsage(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir: no error")
	}
}

// TestStatsCollectorClose checks that the collector's goroutine ends on
// Close, and that Close may be called twice.
func TestStatsCollectorClose(t *testing.T) {
	old := statsInterval
	statsInterval = time.Millisecond
	defer func() { statsInterval = old }()
	db, err := statedb.Open(filepath.Join(t.TempDir(), "state.db"), store.Buckets...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{store: st}
	s.stats = newStatsCollector(s)
	go s.stats.run()
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-s.stats.done:
	default:
		t.Fatal("collector still running after Close")
	}
}
