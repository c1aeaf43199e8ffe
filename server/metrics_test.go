package server

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
)

func TestMetricDescriptorsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range metricDescriptors() {
		if seen[d.Name] {
			t.Errorf("descriptor %s listed twice", d.Name)
		}
		seen[d.Name] = true
		if d.Help == "" || len(d.LabelKeys) < len(metricBaseLabels) {
			t.Errorf("descriptor %v", d)
		}
		keys := map[string]bool{}
		for _, k := range d.LabelKeys {
			if keys[k] {
				t.Errorf("descriptor %s: label %s twice", d.Name, k)
			}
			keys[k] = true
		}
	}
	if len(seen) != len(metricDefs) {
		t.Errorf("%d descriptors, %d metrics defined", len(seen), len(metricDefs))
	}
}

// checkMetrics fails for a metric with no descriptor or with label values
// that do not match its descriptor's keys, and returns them by name and
// the last label value.
func checkMetrics(t *testing.T, ms []*runtimeapi.Metric) map[string]*runtimeapi.Metric {
	t.Helper()
	descs := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range metricDescriptors() {
		descs[d.Name] = d
	}
	out := map[string]*runtimeapi.Metric{}
	for _, m := range ms {
		d := descs[m.Name]
		if d == nil {
			t.Errorf("metric %s has no descriptor", m.Name)
			continue
		}
		if len(m.LabelValues) != len(d.LabelKeys) {
			t.Errorf("metric %s: %d label values for keys %v", m.Name, len(m.LabelValues), d.LabelKeys)
		}
		if m.Value == nil || m.Timestamp == 0 {
			t.Errorf("metric %v", m)
		}
		key := m.Name
		for _, v := range m.LabelValues[min(len(metricBaseLabels), len(m.LabelValues)):] {
			key += "/" + v
		}
		if out[key] != nil {
			t.Errorf("metric %s twice", key)
		}
		out[key] = m
	}
	return out
}

func TestContainerMetrics(t *testing.T) {
	at := time.Unix(1700000000, 5)
	fsAt := at.Add(-3 * time.Second)
	smp := &ctrSample{
		at: at, cgOK: true,
		cg: cgroups.Stats{
			MemoryUsage: 30e6, MemoryWorkingSet: 20e6, CPUUsageNanos: 2_700_000_000, Pids: 3,
			CPUUserNanos: 1_900_000_000, CPUSystemNanos: 800_000_000,
			CPUPeriods: 50, CPUThrottledPeriods: 7, CPUThrottledNanos: 3_100_000_000,
			MemoryCache: 4e6, MemoryRSS: 16e6, MemoryMappedFile: 1e6, MemorySwap: 2e6, MemoryKernel: 5e5,
			MemoryMaxUsage: 31e6, MemoryFailcnt: 9, PgFault: 100, PgMajFault: 2, TotalPgFault: 150, TotalPgMajFault: 3,
			OOMKills: 1, PidsLimit: 1024,
		},
		fsAt:  fsAt,
		fs:    writableLayer{mountpoint: "/var/lib/berth/c1", bytes: 6e6, inodes: 4, fsBytes: 1e12, fsInodes: 1e8, fsInodesFree: 9e7},
		procs: processUsage{processes: 2, fds: 11, sockets: 3},
		io:    []cgroups.IO{{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
	}
	base := []string{"c1", "app", "busybox"}
	got := checkMetrics(t, containerMetrics(smp, base))
	type w struct {
		v   uint64
		typ runtimeapi.MetricType
		ts  time.Time
	}
	counter, gauge := runtimeapi.MetricType_COUNTER, runtimeapi.MetricType_GAUGE
	dev := "/var/lib/berth/c1"
	want := map[string]w{
		mCPUUsage:                              {2, counter, at},
		mCPUUser:                               {1, counter, at},
		mCPUSystem:                             {0, counter, at},
		mCPUPeriods:                            {50, counter, at},
		mCPUThrottledPeriods:                   {7, counter, at},
		mCPUThrottledSeconds:                   {3, counter, at},
		mMemoryUsage:                           {30e6, gauge, at},
		mMemoryWorking:                         {20e6, gauge, at},
		mMemoryCache:                           {4e6, gauge, at},
		mMemoryRSS:                             {16e6, gauge, at},
		mMemoryMappedFile:                      {1e6, gauge, at},
		mMemorySwap:                            {2e6, gauge, at},
		mMemoryKernel:                          {5e5, gauge, at},
		mMemoryMaxUsage:                        {31e6, gauge, at},
		mMemoryFailcnt:                         {9, counter, at},
		mMemoryFailures + "/pgfault/container": {100, counter, at},
		mMemoryFailures + "/pgmajfault/container": {2, counter, at},
		mMemoryFailures + "/pgfault/hierarchy":    {150, counter, at},
		mMemoryFailures + "/pgmajfault/hierarchy": {3, counter, at},
		mOOMEvents:                     {1, counter, at},
		mThreads:                       {3, gauge, at},
		mThreadsMax:                    {1024, gauge, at},
		mLastSeen:                      {1700000000, gauge, at},
		mFsUsage + "/" + dev:           {6e6, gauge, fsAt},
		mFsLimit + "/" + dev:           {1e12, gauge, fsAt},
		mFsInodesTotal + "/" + dev:     {1e8, gauge, fsAt},
		mFsInodesFree + "/" + dev:      {9e7, gauge, fsAt},
		mProcesses:                     {2, gauge, fsAt},
		mFileDescriptors:               {11, gauge, fsAt},
		mSockets:                       {3, gauge, fsAt},
		mBlkioUsage + "/8:0/8/0/Read":  {4096, counter, fsAt},
		mBlkioUsage + "/8:0/8/0/Write": {8192, counter, fsAt},
		mFsReadsBytes + "/8:0":         {4096, counter, fsAt},
		mFsWritesBytes + "/8:0":        {8192, counter, fsAt},
		mFsReads + "/8:0":              {1, counter, fsAt},
		mFsWrites + "/8:0":             {2, counter, fsAt},
	}
	if len(got) != len(want) {
		t.Errorf("got %d metrics, want %d", len(got), len(want))
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s", k)
			}
		}
	}
	for k, w := range want {
		m := got[k]
		if m == nil {
			t.Errorf("no %s", k)
			continue
		}
		if m.Value.Value != w.v || m.MetricType != w.typ || m.Timestamp != w.ts.UnixNano() {
			t.Errorf("%s = %v, want %d type %v at %v", k, m, w.v, w.typ, w.ts.UnixNano())
		}
		for i, b := range base {
			if m.LabelValues[i] != b {
				t.Errorf("%s labels %v, want %v first", k, m.LabelValues, base)
			}
		}
	}

	// Without readings there is nothing to report.
	if ms := containerMetrics(&ctrSample{}, base); len(ms) != 0 {
		t.Errorf("metrics of an empty sample: %v", ms)
	}
}

func TestSpecMetrics(t *testing.T) {
	at := time.Unix(1700000000, 0)
	base := []string{"c1", "app", "busybox"}
	got := checkMetrics(t, specMetrics(&runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 1024, MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20,
	}, at, base))
	want := map[string]uint64{mSpecCPUPeriod: 100000, mSpecCPUQuota: 20000, mSpecCPUShares: 1024, mSpecMemoryLimit: 64 << 20, mSpecMemorySwapLimit: 64 << 20}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	for k, v := range want {
		if m := got[k]; m == nil || m.Value.Value != v {
			t.Errorf("%s = %v, want %d", k, m, v)
		}
	}
	// Nothing set: zeros, and no quota at all (unlimited).
	got = checkMetrics(t, specMetrics(&runtimeapi.LinuxContainerResources{CpuQuota: -1}, at, base))
	if _, ok := got[mSpecCPUQuota]; ok || len(got) != 4 || got[mSpecCPUShares].Value.Value != 0 {
		t.Errorf("unset resources gave %v", got)
	}
}

func TestNetworkMetrics(t *testing.T) {
	at := time.Unix(1700000000, 0)
	n := &podNetSample{at: at, ifaces: []netDevStats{
		{name: "lo", rxBytes: 99, txBytes: 99},
		{name: "eth0", rxBytes: 100, rxPackets: 10, rxErrors: 1, rxDropped: 3, txBytes: 200, txPackets: 20, txErrors: 2, txDropped: 4},
	}}
	got := checkMetrics(t, networkMetrics(n, []string{"p1", "web", ""}))
	want := map[string]uint64{
		mNetRxBytes + "/eth0": 100, mNetRxErrors + "/eth0": 1, mNetRxPackets + "/eth0": 10, mNetRxDropped + "/eth0": 3,
		mNetTxBytes + "/eth0": 200, mNetTxErrors + "/eth0": 2, mNetTxPackets + "/eth0": 20, mNetTxDropped + "/eth0": 4,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if m := got[k]; m == nil || m.Value.Value != v || m.MetricType != runtimeapi.MetricType_COUNTER || m.Timestamp != at.UnixNano() || m.LabelValues[0] != "p1" {
			t.Errorf("%s = %v, want %d", k, m, v)
		}
	}
}

func TestNewMetricUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a metric without a descriptor")
		}
	}()
	newMetric("container_nonexistent", time.Now(), 1, nil)
}
