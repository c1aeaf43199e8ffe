package server

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	statedb "github.com/berth-runtime/berth/pkg/store"
	"github.com/berth-runtime/berth/server/store"
)

// kubeletResources is what kubelet sends for a container with these
// requests and limits (millicores, bytes; 0 for none) on cgroup v1:
// shares from the CPU request (2 without one), quota from the CPU limit,
// and memory_limit_in_bytes; the memory request is not sent.
func kubeletResources(cpuReqMilli, cpuLimMilli, memLim int64) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{CpuShares: max(cpuReqMilli*1024/1000, 2), CpuPeriod: 100000, MemoryLimitInBytes: memLim}
	if cpuLimMilli > 0 {
		r.CpuQuota = cpuLimMilli * 100000 / 1000
	}
	return r
}

func TestSumResources(t *testing.T) {
	cases := []struct {
		name string
		in   []*runtimeapi.LinuxContainerResources
		want resourceTotals
	}{
		{"none", nil, resourceTotals{}},
		{
			"guaranteed 500m/256Mi",
			[]*runtimeapi.LinuxContainerResources{kubeletResources(500, 500, 256<<20)},
			resourceTotals{CPURequest: 0.5, CPULimit: 0.5, MemoryLimit: 256 << 20, NoMemoryRequest: 1},
		},
		{
			"burstable and best effort add up",
			[]*runtimeapi.LinuxContainerResources{kubeletResources(250, 1000, 128<<20), kubeletResources(0, 0, 0)},
			resourceTotals{CPURequest: 0.25 + 2.0/1024, CPULimit: 1, MemoryLimit: 128 << 20, NoCPULimit: 1, NoMemoryRequest: 2, NoMemoryLimit: 1},
		},
		{
			"cgroup v2 with MemoryQoS: memory.min is the request, memory.max a limit",
			[]*runtimeapi.LinuxContainerResources{{CpuShares: 1024, Unified: map[string]string{"memory.min": "67108864", "memory.max": "134217728"}}},
			resourceTotals{CPURequest: 1, MemoryRequest: 64 << 20, MemoryLimit: 128 << 20, NoCPULimit: 1},
		},
		{
			"unlimited quota, max and junk are no value; quota without period uses 100ms",
			[]*runtimeapi.LinuxContainerResources{
				{CpuQuota: -1, CpuPeriod: 100000, Unified: map[string]string{"memory.max": "max", "memory.min": "lots"}},
				{CpuQuota: 25000},
				nil,
			},
			resourceTotals{CPULimit: 0.25, NoCPURequest: 3, NoCPULimit: 2, NoMemoryRequest: 3, NoMemoryLimit: 3},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sumResources(tc.in); got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestPromCollector checks the scrape output for a store holding pods and
// containers in every state: counts by state, and sums over the running
// containers only.
func TestPromCollector(t *testing.T) {
	db, err := statedb.Open(filepath.Join(t.TempDir(), "state.db"), store.Buckets...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	for i, phase := range []string{store.PodReady, store.PodReady, store.PodStopped} {
		if err := st.ReservePod(&store.Pod{ID: fmt.Sprintf("pod%d", i), Name: fmt.Sprintf("p%d", i), Phase: phase}); err != nil {
			t.Fatal(err)
		}
	}
	ctrs := []struct {
		state   string
		res     *runtimeapi.LinuxContainerResources
		resized *runtimeapi.LinuxContainerResources
	}{
		{store.ContainerRunning, kubeletResources(500, 1000, 256<<20), nil},
		{store.ContainerRunning, kubeletResources(0, 0, 0), nil},
		{store.ContainerRunning, nil, nil},
		// Resized in place: its new resources are the ones that count.
		{store.ContainerRunning, kubeletResources(4000, 4000, 1<<30), kubeletResources(250, 500, 128<<20)},
		// Not running: their resources count for nothing.
		{store.ContainerCreated, kubeletResources(4000, 4000, 1<<30), nil},
		{store.ContainerExited, kubeletResources(4000, 4000, 1<<30), nil},
	}
	for i, c := range ctrs {
		cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}}
		if c.res != nil {
			cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: c.res}
		}
		pb, err := proto.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rec := &store.Container{ID: fmt.Sprintf("ctr%d", i), PodID: "pod0", Name: fmt.Sprintf("c%d", i), State: c.state, ConfigPB: pb}
		if c.resized != nil {
			if rec.Resources, err = proto.Marshal(c.resized); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.ReserveContainer(rec); err != nil {
			t.Fatal(err)
		}
	}

	c := (&Server{store: st}).PromCollector()
	got := scrape(t, c)
	want := map[string]float64{
		`berth_containers{state="created"}`:                               1,
		`berth_containers{state="exited"}`:                                1,
		`berth_containers{state="running"}`:                               4,
		`berth_containers{state="unknown"}`:                               0,
		`berth_pods{state="creating"}`:                                    0,
		`berth_pods{state="ready"}`:                                       2,
		`berth_pods{state="stopped"}`:                                     1,
		`berth_running_containers_cpu_request_cores`:                      0.5 + 2.0/1024 + 0.25,
		`berth_running_containers_cpu_limit_cores`:                        1 + 0.5,
		`berth_running_containers_memory_limit_bytes`:                     256<<20 + 128<<20,
		`berth_running_containers_memory_request_bytes`:                   0,
		`berth_running_containers_unspecified{resource="cpu_limit"}`:      2,
		`berth_running_containers_unspecified{resource="cpu_request"}`:    1,
		`berth_running_containers_unspecified{resource="memory_limit"}`:   2,
		`berth_running_containers_unspecified{resource="memory_request"}`: 4,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scraped\n%v\nwant\n%v", got, want)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

// scrape registers c alone and gathers it, as the endpoint would: the
// registry also checks that Describe and Collect agree. It returns each
// series' value by name{labels}.
func scrape(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}
