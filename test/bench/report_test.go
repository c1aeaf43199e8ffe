package main

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/testregistry"
)

func samples(walls ...int) []pullSample {
	out := make([]pullSample, len(walls))
	for i, w := range walls {
		out[i] = pullSample{Wall: time.Duration(w) * time.Millisecond, CPU: time.Duration(w/2) * time.Millisecond, LayerGETs: 5, BlobGETs: 6, Stored: 51_000_000}
	}
	return out
}

func testReport(berthd, containerd []int) report {
	return report{
		Machine:  machine{OS: "Debian", Kernel: "6.1.0", CPU: "Test CPU", CPUs: 2, LoadAvg: "0.05", MemoryBytes: 4 << 30, Filesystem: "ext4"},
		Date:     time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC),
		Versions: map[string]string{"berthd": "berthd v1", "containerd": "containerd 1.6.20"},
		Image: testregistry.ImageInfo{Repo: "berth/big", Tag: "latest", Size: 51_400_000,
			LayerDigests:    make([]string, 5),
			LayerMediaTypes: []string{"application/vnd.oci.image.layer.v1.tar+gzip"},
			ConfigDigest:    "sha256:0123456789abcdef0123"},
		Runs: len(berthd),
		Results: []runtimeResult{
			{Name: "berthd", Warmup: samples(300)[0], Samples: samples(berthd...), Memory: memory{RSS: 20 << 20, Peak: 30 << 20}},
			{Name: "containerd", Warmup: samples(800)[0], Samples: samples(containerd...), Memory: memory{RSS: 40 << 20, Peak: 50 << 20}},
		},
	}
}

func TestReportMet(t *testing.T) {
	md := testReport([]int{300, 280, 320}, []int{700, 650, 900}).markdown()
	for _, want := range []string{
		"| berthd | 300 | 280 | 320 | 150 | 5 | 6 | 51.0 | 20 | 30 |",
		"| containerd | 700 | 650 | 900 | 350 | 5 | 6 | 51.0 | 40 | 50 |",
		"berthd / containerd: **0.43**",
		"Target: berthd at most 0.5 of containerd's median pull time — **met**.",
		"| date (UTC) | 2025-01-02 03:04 |",
		"| CPU | Test CPU, 2 CPUs; load average 0.05 before the first pull |",
		"| memory | 4.0 GiB |",
		"`docker.io/berth/big:latest`: 51.4 MB in 5 layers (gzip)",
		"| warm-up | 300 | 800 |",
		"| 3 | 320 | 900 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestReportNotMet(t *testing.T) {
	md := testReport([]int{500}, []int{600}).markdown()
	if !strings.Contains(md, "— **not met**.") || !strings.Contains(md, "**0.83**") {
		t.Errorf("report:\n%s", md)
	}
}

func TestCountRange(t *testing.T) {
	ss := samples(1, 2)
	ss[1].LayerGETs = 7
	if got := countRange(ss, func(p pullSample) int { return p.LayerGETs }); got != "5–7" {
		t.Errorf("countRange = %q", got)
	}
	if got := countRange(nil, func(p pullSample) int { return p.LayerGETs }); got != "-" {
		t.Errorf("countRange(nil) = %q", got)
	}
}
