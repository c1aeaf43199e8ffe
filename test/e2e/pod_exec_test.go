package e2e

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestExecSync runs commands in a running container: their output and
// exit code come back; a command that outlives its timeout is killed and
// the call fails with DeadlineExceeded; output beyond
// runtime.exec_output_limit is cut, and stderr says so.
func TestExecSync(t *testing.T) {
	p := startPodDaemon(t, "exec_output_limit = 1024")
	p.mustPull("busybox")
	podCfg := p.podConfig("exec")
	pod := p.runPod(podCfg)
	id := p.runCtr(pod, podCfg, ctrConfig("sleeper", "busybox", "sleep", "3600"))

	res, err := p.execSync(id, 10, "sh", "-c", "echo out; echo err >&2; exit 5")
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 5 {
		t.Errorf("ExecSync: stdout %q stderr %q exit %d, want \"out\\n\" \"err\\n\" 5", res.Stdout, res.Stderr, res.ExitCode)
	}
	// The exec'd process is in the container: same root and PID namespace.
	res, err = p.execSync(id, 10, "busybox", "ps", "-o", "pid,args")
	if err != nil || !strings.Contains(string(res.Stdout), "1 sleep 3600") {
		t.Errorf("ps in the container: %v\n%s%s", err, res.GetStdout(), res.GetStderr())
	}

	start := time.Now()
	_, err = p.execSync(id, 1, "sleep", "10")
	took := time.Since(start)
	wantCode(t, "ExecSync sleep 10 with timeout 1", err, codes.DeadlineExceeded)
	if took > 5*time.Second {
		t.Errorf("ExecSync with timeout 1 returned after %s", took)
	}
	res, err = p.execSync(id, 10, "busybox", "ps", "-o", "args")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Stdout), "sleep 10") {
		t.Errorf("the timed-out command still runs:\n%s", res.Stdout)
	}

	res, err = p.execSync(id, 10, "sh", "-c", `busybox head -c 5000 /dev/zero | busybox tr '\0' a; busybox head -c 3000 /dev/zero | busybox tr '\0' b >&2`)
	if err != nil {
		t.Fatalf("ExecSync with large output: %v", err)
	}
	if string(res.Stdout) != strings.Repeat("a", 1024) {
		t.Errorf("stdout of 5000 bytes with exec_output_limit 1024: %d bytes", len(res.Stdout))
	}
	if !strings.HasPrefix(string(res.Stderr), strings.Repeat("b", 1024)) || !strings.Contains(string(res.Stderr), "stdout truncated") || !strings.Contains(string(res.Stderr), "stderr truncated") {
		t.Errorf("stderr does not say both streams were truncated: %q", short(string(res.Stderr))+"..."+string(res.Stderr[min(len(res.Stderr), 1024):]))
	}

	// Nothing to exec in: an unknown container, a stopped one.
	_, err = p.execSync("0123456789abcdef", 10, "true")
	wantCode(t, "ExecSync in an unknown container", err, codes.NotFound)
	if _, err := p.rt.StopContainer(p.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = p.execSync(id, 10, "true")
	wantCode(t, "ExecSync in an exited container", err, codes.FailedPrecondition)
}
