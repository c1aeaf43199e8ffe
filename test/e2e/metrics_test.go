package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestMetricsEndpoint runs berthd with metrics on a loopback port, pulls,
// runs a pod with one started and one created container, and checks the
// figures the endpoint shows against what was done.
func TestMetricsEndpoint(t *testing.T) {
	addr := freeLoopbackAddr(t)
	p := startPodDaemonWith(t, podDaemonOptions{runtime: fmt.Sprintf("[metrics]\naddress = %q\n", addr)})
	url := "http://" + addr + "/metrics"
	_, port, _ := net.SplitHostPort(addr)
	if ports := listeningTCPPorts(t, p.cmd.Process.Pid); !slices.Contains(ports, atoiOrZero(port)) {
		t.Fatalf("berthd listens on TCP ports %v, not the metrics port %s", ports, port)
	}

	m := scrapeMetrics(t, url)
	wantMetric(t, m, `berth_image_pull_bytes_total`, 0)
	wantMetric(t, m, `berth_containers{state="running"}`, 0)

	p.mustPull("busybox")
	if _, err := p.pull("docker.io/library/no-such-image:1"); err == nil {
		t.Fatal("pull of a missing image succeeded")
	}
	m = scrapeMetrics(t, url)
	if m[`berth_image_pull_bytes_total`] <= 0 {
		t.Errorf("berth_image_pull_bytes_total = %v after a pull", m[`berth_image_pull_bytes_total`])
	}
	wantMetric(t, m, `berth_image_pull_duration_seconds_count{outcome="success"}`, 1)
	wantMetric(t, m, `berth_image_pull_duration_seconds_count{outcome="not_found"}`, 1)
	wantMetric(t, m, `berth_cri_rpc_duration_seconds_count{method="PullImage"}`, 2)
	wantMetric(t, m, `berth_cri_rpc_errors_total{code="NotFound",method="PullImage"}`, 1)

	podCfg := p.podConfig("metrics")
	pod := p.runPod(podCfg)
	// What kubelet sends for requests cpu 500m, limits cpu 1500m and
	// memory 64 MiB.
	cfg := ctrConfig("sized", "busybox", "sleep", "600")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 150000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20}
	began := time.Now()
	ctr := p.runCtr(pod, podCfg, cfg)
	startCost := time.Since(began)
	idle := p.createCtr(pod, podCfg, ctrConfig("idle", "busybox", "sleep", "600"))

	m = scrapeMetrics(t, url)
	wantMetric(t, m, `berth_pods{state="ready"}`, 1)
	wantMetric(t, m, `berth_containers{state="running"}`, 1)
	wantMetric(t, m, `berth_containers{state="created"}`, 1)
	wantMetric(t, m, `berth_cri_rpc_duration_seconds_count{method="RunPodSandbox"}`, 1)
	wantMetric(t, m, `berth_cri_rpc_duration_seconds_count{method="CreateContainer"}`, 2)
	wantMetric(t, m, `berth_running_containers_cpu_request_cores`, 0.5)
	wantMetric(t, m, `berth_running_containers_cpu_limit_cores`, 1.5)
	wantMetric(t, m, `berth_running_containers_memory_limit_bytes`, 64<<20)
	wantMetric(t, m, `berth_running_containers_memory_request_bytes`, 0)
	wantMetric(t, m, `berth_running_containers_unspecified{resource="memory_request"}`, 1)
	wantMetric(t, m, `berth_running_containers_unspecified{resource="cpu_limit"}`, 0)
	wantMetric(t, m, `berth_container_create_to_running_seconds_count`, 1)
	if s := m[`berth_container_create_to_running_seconds_sum`]; s <= 0 || s > startCost.Seconds() {
		t.Errorf("start cost %vs, want within the %v the two calls took", s, startCost)
	}
	if m[`process_resident_memory_bytes`] <= 0 || m[`go_goroutines`] <= 0 {
		t.Error("Go and process collectors missing")
	}

	// A stopped container no longer counts towards the node's resources.
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: ctr, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.RemoveContainer(p.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: idle}); err != nil {
		t.Fatal(err)
	}
	m = scrapeMetrics(t, url)
	wantMetric(t, m, `berth_containers{state="running"}`, 0)
	wantMetric(t, m, `berth_containers{state="exited"}`, 1)
	wantMetric(t, m, `berth_containers{state="created"}`, 0)
	wantMetric(t, m, `berth_running_containers_cpu_request_cores`, 0)
	wantMetric(t, m, `berth_running_containers_memory_limit_bytes`, 0)

	// SIGTERM closes the endpoint with the rest.
	p.removeAllPods()
	p.stop()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after berthd stopped", addr)
	}
}

// TestMetricsOffByDefault checks that with the default config berthd
// serves no metrics: none of the TCP ports it listens on (if any) answers
// /metrics, and its log announces no endpoint.
func TestMetricsOffByDefault(t *testing.T) {
	d := startDaemon(t, "")
	ports := listeningTCPPorts(t, d.cmd.Process.Pid)
	for _, port := range ports {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "berth_") {
			t.Fatalf("port %d serves metrics with the default config", port)
		}
	}
	if strings.Contains(d.log(), "serving metrics") {
		t.Fatal("the log announces a metrics endpoint with the default config")
	}
}

func atoiOrZero(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// freeLoopbackAddr is a 127.0.0.1 port free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeMetrics reads the endpoint's text format into series -> value,
// series written as in the text (name{label="v",...}, labels sorted).
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantMetric(t *testing.T, m map[string]float64, series string, want float64) {
	t.Helper()
	got, ok := m[series]
	if !ok {
		t.Errorf("%s missing", series)
		return
	}
	if got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// listeningTCPPorts lists the TCP ports pid listens on: its socket inodes
// matched against the kernel's TCP tables in LISTEN state.
func listeningTCPPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ... inode (10th field)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			port, err := strconv.ParseInt(f[1][strings.LastIndexByte(f[1], ':')+1:], 16, 32)
			if err == nil {
				ports = append(ports, int(port))
			}
		}
	}
	return ports
}
