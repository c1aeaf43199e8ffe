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
		if len(d.LabelKeys) > len(metricBaseLabels) {
			key += "/" + m.LabelValues[len(m.LabelValues)-1]
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
		cg:   cgroups.Stats{MemoryUsage: 30e6, MemoryWorkingSet: 20e6, CPUUsageNanos: 2_700_000_000, Pids: 3},
		fsAt: fsAt, fs: writableLayer{mountpoint: "/var/lib/berth/c1", bytes: 6e6, inodes: 4},
	}
	base := []string{"c1", "app", "busybox"}
	got := checkMetrics(t, containerMetrics(smp, base))
	want := map[string]struct {
		v   uint64
		typ runtimeapi.MetricType
		ts  time.Time
	}{
		mCPUUsage:                            {2, runtimeapi.MetricType_COUNTER, at},
		mMemoryUsage:                         {30e6, runtimeapi.MetricType_GAUGE, at},
		mMemoryWorking:                       {20e6, runtimeapi.MetricType_GAUGE, at},
		mProcesses:                           {3, runtimeapi.MetricType_GAUGE, at},
		mFsUsage + "/" + "/var/lib/berth/c1": {6e6, runtimeapi.MetricType_GAUGE, fsAt},
	}
	if len(got) != len(want) {
		t.Errorf("got %d metrics, want %d: %v", len(got), len(want), got)
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

func TestNetworkMetrics(t *testing.T) {
	at := time.Unix(1700000000, 0)
	n := &podNetSample{at: at, ifaces: []netDevStats{
		{name: "lo", rxBytes: 99, txBytes: 99},
		{name: "eth0", rxBytes: 100, rxErrors: 1, txBytes: 200, txErrors: 2},
	}}
	got := checkMetrics(t, networkMetrics(n, []string{"p1", "web", ""}))
	want := map[string]uint64{
		mNetRxBytes + "/eth0": 100, mNetRxErrors + "/eth0": 1,
		mNetTxBytes + "/eth0": 200, mNetTxErrors + "/eth0": 2,
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
