package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/testnet"
	"github.com/berth-runtime/berth/test/testregistry"
)

func TestParseStat(t *testing.T) {
	p, err := parseStat("4242 (berth shim (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 8 0 1 2 3")
	if err != nil {
		t.Fatal(err)
	}
	if p.Comm != "berth shim (x)" || p.State != 'S' || p.PPID != 17 {
		t.Errorf("parseStat = %+v", p)
	}
	if _, err := parseStat("garbage"); err == nil {
		t.Error("malformed line accepted")
	}
}

func TestProcArgs(t *testing.T) {
	berth := procInfo{Argv: []string{"/usr/bin/berth-shim", "--pod", "abc", "--dir", "/run/b/shims/abc"}}
	ctrd := procInfo{Argv: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "def", "-address", "/tmp/x/c.sock"}}
	if berth.exe() != "berth-shim" || berth.arg("--pod") != "abc" || berth.arg("--log") != "" {
		t.Errorf("berth-shim: exe %q pod %q", berth.exe(), berth.arg("--pod"))
	}
	if ctrd.exe() != "containerd-shim-runc-v2" || ctrd.arg("-id") != "def" {
		t.Errorf("containerd shim: exe %q id %q", ctrd.exe(), ctrd.arg("-id"))
	}
	if (procInfo{Argv: []string{"x", "--pod=ghi"}}).arg("--pod") != "ghi" {
		t.Error("--flag=value not read")
	}
}

func TestDescendsFrom(t *testing.T) {
	ps := []procInfo{{PID: 1, PPID: 0}, {PID: 10, PPID: 1}, {PID: 20, PPID: 10}, {PID: 30, PPID: 20}, {PID: 40, PPID: 1},
		{PID: 50, PPID: 51}, {PID: 51, PPID: 50}} // a loop must not hang
	by := indexByPID(ps)
	for _, c := range []struct {
		pid, ancestor int
		want          bool
	}{{30, 10, true}, {30, 20, true}, {20, 30, false}, {40, 10, false}, {50, 10, false}} {
		if got := descendsFrom(by[c.pid], by, c.ancestor); got != c.want {
			t.Errorf("descendsFrom(%d, %d) = %v, want %v", c.pid, c.ancestor, got, c.want)
		}
	}
}

func TestParseSmapsRollup(t *testing.T) {
	s := `00400000-7ffc1c7e2000 ---p 00000000 00:00 0                          [rollup]
Rss:               10252 kB
Pss:                2580 kB
Pss_Anon:           1900 kB
Shared_Clean:       8000 kB
`
	m, err := parseSmapsRollup(s)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 10252<<10 || m.PSS != 2580<<10 {
		t.Errorf("parseSmapsRollup = %+v", m)
	}
	if _, err := parseSmapsRollup("Rss: 1 kB\n"); err == nil {
		t.Error("missing Pss accepted")
	}
}

func TestParsePcpCount(t *testing.T) {
	zi := "Node 0, zone   Normal\n  pagesets\n    cpu: 0\n              count:    4380\n              high:     4960\n    cpu: 1\n              count: 20\n"
	if n, err := parsePcpCount(zi); err != nil || n != 4400 {
		t.Errorf("parsePcpCount = %d, %v; want 4400", n, err)
	}
	if _, err := parsePcpCount("    count: x\n"); err == nil {
		t.Error("malformed count accepted")
	}
}

func TestParseMeminfo(t *testing.T) {
	m, err := parseMeminfo("MemTotal:       24607036 kB\nMemFree:        20000000 kB\nMemAvailable:   22000000 kB\nHugePages_Total:       0\n")
	if err != nil || m["MemAvailable"] != 22000000<<10 || m["MemFree"] != 20000000<<10 || len(m) != 3 {
		t.Errorf("parseMeminfo = %v, %v", m, err)
	}
	if _, err := parseMeminfo("MemTotal: 1 kB\n"); err == nil {
		t.Error("missing MemAvailable accepted")
	}
	if _, err := parseMeminfo("MemTotal: x kB\nMemAvailable: 1 kB\n"); err == nil {
		t.Error("malformed value accepted")
	}
}

// The parts of MemFree's drop and the rest add up to the whole drop.
func TestMemPartsPerPod(t *testing.T) {
	before := meminfo{"MemFree": 1000 << 20, "MemAvailable": 2000 << 20, "AnonPages": 100 << 20, "Slab": 50 << 20,
		"Cached": 500 << 20, "Buffers": 10 << 20}
	after := meminfo{"MemFree": 900 << 20, "MemAvailable": 1920 << 20, "AnonPages": 140 << 20, "Slab": 70 << 20,
		"Cached": 510 << 20, "Buffers": 10 << 20}
	before[pcpFree], after[pcpFree] = 30<<20, 50<<20 // 20 MiB of the drop only moved to per-CPU lists
	b := burstResult{Pods: 10, MemBefore: before, MemAfter: after}
	if got := b.inUsePerPod(); got != 8<<20 {
		t.Errorf("inUsePerPod = %d, want 8 MiB", got)
	}
	if got := b.memPerPod(); got != 8<<20 {
		t.Errorf("memPerPod = %d, want 8 MiB", got)
	}
	parts := b.memPartsPerPod()
	want := map[string]int64{"anonymous": 4 << 20, "slab": 2 << 20, "page cache": 1 << 20, "free, in per-CPU lists": 2 << 20}
	var sum int64
	for i, p := range memParts {
		if parts[i] != want[p.name] {
			t.Errorf("%s = %d, want %d", p.name, parts[i], want[p.name])
		}
		sum += parts[i]
	}
	if rest := parts[len(parts)-1]; rest != 1<<20 || sum+rest != b.dropPerPod("MemFree") {
		t.Errorf("rest = %d (parts %d), MemFree drop %d", rest, sum, b.dropPerPod("MemFree"))
	}
}

func TestCgroupMounts(t *testing.T) {
	mi := `25 1 0:23 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
28 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
40 1 8:1 / / rw,relatime - ext4 /dev/vda rw`
	got := strings.Join(cgroupMounts(mi), " ")
	if want := "/sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup/cpu,cpuacct"; got != want {
		t.Errorf("cgroupMounts = %q, want %q", got, want)
	}
}

// The conflist is valid JSON with the plugins and settings both runtimes
// must see: no masquerade, leases under the benchmark's directory, portmap
// without SNAT, loopback.
func TestConflist(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("10.99.42.0/24")
	n := &testnet.Env{Name: "berth-bench-abc", Bridge: "bbenchabc", Subnet: subnet, DataDir: "/tmp/x/ipam", ConfDir: t.TempDir()}
	if err := writePodConf(n); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(n.ConfDir, podConfFile))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		CNIVersion string `json:"cniVersion"`
		Name       string
		Plugins    []map[string]any
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != n.Name || c.CNIVersion == "" || len(c.Plugins) != 3 {
		t.Fatalf("conflist = %s", b)
	}
	br, pm, lo := c.Plugins[0], c.Plugins[1], c.Plugins[2]
	ipam, _ := br["ipam"].(map[string]any)
	if br["type"] != "bridge" || br["bridge"] != n.Bridge || br["ipMasq"] != false || ipam["type"] != "host-local" || ipam["dataDir"] != n.DataDir {
		t.Errorf("bridge = %v", br)
	}
	if !strings.Contains(string(b), `"subnet": "10.99.42.0/24"`) {
		t.Errorf("subnet missing: %s", b)
	}
	if pm["type"] != "portmap" || pm["snat"] != false || lo["type"] != "loopback" {
		t.Errorf("portmap %v, loopback %v", pm, lo)
	}
	if br["hairpinMode"] != true || !strings.Contains(string(b), `"dst": "0.0.0.0/0"`) {
		t.Errorf("bridge without hairpin mode or default route: %s", b)
	}
}

func TestContainerdShimSocket(t *testing.T) {
	// sha256("/tmp/c.sock/k8s.io/abc"), as containerd 1.6 names it.
	got := containerdShimSocket("/tmp/c.sock", "abc")
	if !strings.HasPrefix(got, containerdShimSockets+"/") || len(got) != len(containerdShimSockets)+1+64 {
		t.Errorf("containerdShimSocket = %q", got)
	}
	if got == containerdShimSocket("/tmp/c.sock", "abd") {
		t.Error("different ids share a socket")
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 30; i++ {
		ds = append(ds, time.Duration(31-i)*time.Millisecond)
	}
	if p := percentile(ds, 95); p != 29*time.Millisecond {
		t.Errorf("p95 of 1..30 ms = %v, want 29ms", p)
	}
	if p := percentile(ds, 100); p != 30*time.Millisecond {
		t.Errorf("p100 = %v", p)
	}
	if p := percentile(nil, 95); p != 0 {
		t.Errorf("p95 of nothing = %v", p)
	}
}

func TestParseRPCDurations(t *testing.T) {
	log := `time="t" level=info msg="berthd serving" component=berthd
time="t" level=debug msg=rpc component=cri duration="9µs" method=Version
time="t" level=debug msg=rpc component=cri duration=62.5ms method=RunPodSandbox
time="t" level=debug msg=rpc component=cri duration=1.2s method=RunPodSandbox
time="t" level=debug msg=rpc component=cri container=abc duration=3.1ms method=StartContainer
time="t" level=warning msg="rpc failed" code=Unknown component=cri duration=5ms error="x" method=CreateContainer
`
	got, err := parseRPCDurations(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if rs := got["RunPodSandbox"]; len(rs) != 2 || rs[0] != 62500*time.Microsecond || rs[1] != 1200*time.Millisecond {
		t.Errorf("RunPodSandbox = %v", rs)
	}
	if got["Version"][0] != 9*time.Microsecond || got["StartContainer"][0] != 3100*time.Microsecond {
		t.Errorf("durations = %v", got)
	}
	if _, ok := got["CreateContainer"]; ok {
		t.Error("a failed call was counted")
	}
}

func testPodReport() podReport {
	seq := func(run, create, start int) []lifecycleSample {
		var out []lifecycleSample
		for i := 0; i < 30; i++ {
			ms := func(n int) time.Duration { return time.Duration(n+i%3) * time.Millisecond }
			out = append(out, lifecycleSample{podTiming: podTiming{Run: ms(run), Create: ms(create), Start: ms(start)}, Teardown: ms(60)})
		}
		return out
	}
	burst := func(wall, shimPSS, pausePSS, perPod int64, pause int) burstResult {
		return burstResult{Pods: 50, Wall: time.Duration(wall) * time.Millisecond, PerPod: []time.Duration{time.Second, 2 * time.Second},
			DaemonRSS: 30 << 20, Shims: 50, Shim: procMem{RSS: 10 << 20, PSS: shimPSS << 10}, Sandbox: procMem{PSS: pausePSS << 10},
			SandboxProcs: pause,
			MemBefore:    meminfo{"MemAvailable": 10 << 30, "MemFree": 9 << 30, "AnonPages": 1 << 30},
			MemAfter:     meminfo{"MemAvailable": 10<<30 - 50*perPod<<10, "MemFree": 9<<30 - 50*perPod<<10, "AnonPages": 1<<30 + 50*perPod<<9}}
	}
	return podReport{
		Machine:  machine{OS: "Debian", Kernel: "6.1.0", CPU: "Test CPU", CPUs: 2, LoadAvg: "0.05", MemoryBytes: 4 << 30, Filesystem: "ext4", RunFilesystem: "tmpfs"},
		Date:     time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC),
		Versions: map[string]string{"berthd": "berthd v1", "containerd": "containerd 1.6.20", "runc": "runc 1.1.5", "cni": "plugins 1.1.1"},
		Options:  podOptions{lifecycles: 30, burst: 50, rounds: 3, seccomp: "unconfined"},
		Image:    testregistry.ImageInfo{Repo: "library/busybox", Tag: "latest"},
		Pause:    testregistry.ImageInfo{Repo: "berth/pause", Tag: "latest"},
		Subnet:   "10.99.42.0/24",
		Results: []*podResult{
			{Name: "berthd", IdleRSS: 21 << 20, Lifecycles: seq(60, 35, 3),
				Bursts: []burstResult{burst(3000, 2500, 0, 4000, 0), burst(3500, 2400, 0, 3000, 0), burst(2500, 2600, 0, 4100, 0)}},
			{Name: "containerd", IdleRSS: 42 << 20, Lifecycles: seq(125, 14, 76),
				Bursts: []burstResult{burst(8000, 2800, 60, 5000, 50), burst(9000, 2800, 60, 5000, 50), burst(7000, 2800, 60, 5000, 50)}},
		},
		ServerSeq: map[string][]time.Duration{"RunPodSandbox": {60 * time.Millisecond}},
	}
}

func TestPodReport(t *testing.T) {
	md := testPodReport().markdown()
	for _, want := range []string{
		"## Pods",
		"| state dirs | berthd's under /run: tmpfs; containerd's under the temp dir: ext4 |",
		"| berthd | 61.0 / 62.0 | 36.0 / 37.0 | 4.0 / 5.0 | 101.0 / 104.0 | 61.0 |",
		"| containerd | 126.0 / 127.0 | 15.0 / 16.0 | 77.0 / 78.0 | 218.0 / 221.0 | 61.0 |",
		"| one pod at a time | 60.0 / 60.0 | - |",
		"| berthd | 3000 | 1500 / 2000 | 21.0 | 30.0 | 50 | 10.00 | 2.44 | - | 3.91 | 0 |",
		"| 2 | 3500 | 2.93 | 9000 | 4.88 |",
		"| containerd | 8000 | 1500 / 2000 | 42.0 | 30.0 | 50 | 10.00 | 2.73 | 0.06 (50) | 4.88 | 0 |",
		"| runtime | MemAvailable drop | MemFree drop | anonymous | slab | kernel stacks | page tables | per-CPU data | page cache | free, in per-CPU lists | rest |",
		"| berthd | 3.91 | 3.91 | 1.95 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 1.95 |",
		"| containerd | 4.88 | 4.88 | 2.44 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 2.44 |",
		"| pod to running container, median | 101.0 ms | 218.0 ms | 0.46 | ≤ 0.33 | **not met** |",
		"| 50 pods at once, all running | 3000 ms | 8000 ms | 0.38 | ≤ 0.33 | **not met** |",
		"| memory per pod: in use (MemFree drop less the free pages on per-CPU lists) | 3.91 MiB | 4.88 MiB | 0.80 | ≤ 0.40 | **not met** |",
		"| daemon RSS idle | 21.0 MiB | 42.0 MiB | 0.50 | ≤ 0.50 | **met** |",
		"All 360 pods were removed completely",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}

	r := testPodReport()
	r.Results[0].IdleRSS = 21<<20 + 100<<10
	r.Problems = []string{"berthd: pod bench-3 (abc): shim pid 42 still running"}
	md = r.markdown()
	for _, want := range []string{
		"| daemon RSS idle | 21.1 MiB | 42.0 MiB | 0.502 | ≤ 0.50 | **not met** |",
		"found 1 problem(s) over 360 pods",
		"- berthd: pod bench-3 (abc): shim pid 42 still running",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
