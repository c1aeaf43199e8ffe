package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerLogFormat checks the CRI log file a container's output
// lands in: one record per line, timestamps in RFC 3339 with nanoseconds,
// the stream named, and a line longer than runtime.log_max_line_size (16
// KiB by default) cut into P pieces of exactly that size and a final F.
func TestContainerLogFormat(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("logs")
	pod := p.runPod(podCfg)
	cfg := ctrConfig("printer", "busybox", "sh", "-c",
		`echo out-line; echo err-line >&2; busybox head -c 20000 /dev/zero | busybox tr '\0' x; echo; echo done`)
	before := time.Now()
	id := p.runCtr(pod, podCfg, cfg)
	p.waitExited(id, 20*time.Second)
	after := time.Now()

	if got := p.ctrStatus(id).LogPath; got != logPath(podCfg, cfg) {
		t.Errorf("status log path %q, want %q", got, logPath(podCfg, cfg))
	}
	recs := parseCRILog(t, logPath(podCfg, cfg))
	long := strings.Repeat("x", 20000)
	want := []logRecord{
		{stream: "stdout", tag: "F", content: "out-line"},
		{stream: "stderr", tag: "F", content: "err-line"},
		{stream: "stdout", tag: "P", content: long[:16384]},
		{stream: "stdout", tag: "F", content: long[16384:]},
		{stream: "stdout", tag: "F", content: "done"},
	}
	// stdout and stderr are copied apart, so only each stream's own order
	// is fixed.
	for _, stream := range []string{"stdout", "stderr"} {
		var got, exp []logRecord
		for _, r := range recs {
			if r.stream == stream {
				got = append(got, r)
			}
		}
		for _, r := range want {
			if r.stream == stream {
				exp = append(exp, r)
			}
		}
		if len(got) != len(exp) {
			t.Errorf("%s: %d records, want %d: %v", stream, len(got), len(exp), summarize(got))
			continue
		}
		for i := range got {
			if got[i].tag != exp[i].tag || got[i].content != exp[i].content {
				t.Errorf("%s record %d: %s %q (%d bytes), want %s %q (%d bytes)", stream, i,
					got[i].tag, short(got[i].content), len(got[i].content), exp[i].tag, short(exp[i].content), len(exp[i].content))
			}
			if i > 0 && got[i].time.Before(got[i-1].time) {
				t.Errorf("%s record %d goes back in time: %s after %s", stream, i, got[i].time, got[i-1].time)
			}
		}
	}
	for _, r := range recs {
		if r.time.Before(before.Add(-time.Second)) || r.time.After(after.Add(time.Second)) {
			t.Errorf("record time %s is outside the container's run (%s to %s)", r.time, before, after)
		}
	}
}

func short(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

func summarize(recs []logRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.stream+" "+r.tag+" "+short(r.content))
	}
	return out
}

// TestReopenContainerLog rotates a running container's log as kubelet
// does: rename the file, then ReopenContainerLog. Lines written before the
// reopen stay in the renamed file, the following ones go to a new file at
// the original path, and none is lost or cut.
func TestReopenContainerLog(t *testing.T) {
	p := startPodDaemon(t, "")
	p.mustPull("busybox")
	podCfg := p.podConfig("rotate")
	pod := p.runPod(podCfg)
	cfg := ctrConfig("counter", "busybox", "sh", "-c", `i=0; while true; do echo "line-$i"; i=$((i+1)); sleep 0.05; done`)
	id := p.runCtr(pod, podCfg, cfg)
	path := logPath(podCfg, cfg)
	waitLogContains(t, path, "line-5\n", 10*time.Second)

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // lines written meanwhile go to the renamed file
	if _, err := p.rt.ReopenContainerLog(p.ctx(), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	waitLogContains(t, path, "line-", 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}

	numbers := func(file string) []int {
		var ns []int
		for _, r := range parseCRILog(t, file) {
			if r.tag != "F" || r.stream != "stdout" || !strings.HasPrefix(r.content, "line-") {
				t.Fatalf("%s: unexpected record %+v", file, r)
			}
			n, err := strconv.Atoi(strings.TrimPrefix(r.content, "line-"))
			if err != nil {
				t.Fatalf("%s: record %q", file, r.content)
			}
			ns = append(ns, n)
		}
		return ns
	}
	old, cur := numbers(rotated), numbers(path)
	if len(old) == 0 || len(cur) == 0 {
		t.Fatalf("rotated file has %d lines, new file %d", len(old), len(cur))
	}
	all := append(old, cur...)
	for i, n := range all {
		if n != i {
			t.Fatalf("lines across the rotation are not 0, 1, 2, ... without gaps: renamed file %v, new file %v", old, cur)
		}
	}

	// A container that does not run has no log to reopen.
	_, err := p.rt.ReopenContainerLog(p.ctx(), &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
	wantCode(t, "ReopenContainerLog of an exited container", err, codes.FailedPrecondition)
}
