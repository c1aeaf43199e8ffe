package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrictlPodFlow drives a pod's life through the real crictl, as an
// operator would, with JSON config files, and checks what each command
// prints.
func TestCrictlPodFlow(t *testing.T) {
	p := startPodDaemon(t, "")
	if _, err := p.crictl("pull", "busybox"); err != nil {
		t.Fatal(err)
	}
	podLogs := filepath.Join(p.logDir, "crictl")
	podJSON := filepath.Join(p.dir, "pod.json")
	ctrJSON := filepath.Join(p.dir, "ctr.json")
	writeJSON(t, podJSON, map[string]any{
		"metadata":      map[string]any{"name": "crictl-pod", "namespace": "e2e", "uid": "crictl-uid-1", "attempt": 0},
		"hostname":      "crictl-host",
		"log_directory": podLogs,
		"labels":        map[string]string{"app": "crictl"},
		"linux":         map[string]any{},
	})
	writeJSON(t, ctrJSON, map[string]any{
		"metadata": map[string]any{"name": "talker"},
		"image":    map[string]any{"image": "busybox"},
		"command":  []string{"sh", "-c", "echo hello-from-crictl; echo to-stderr >&2; exec sleep 3600"},
		"log_path": "talker.log",
		"linux":    map[string]any{},
	})

	out := p.mustCrictl("runp", podJSON)
	pod := strings.TrimSpace(out)
	if len(pod) != 64 {
		t.Fatalf("crictl runp printed %q, want a pod ID", out)
	}
	p.net.AddID(pod)

	out = p.mustCrictl("pods")
	if row := rowWith(out, "crictl-pod"); row == nil || row[0] != pod[:13] || !strings.Contains(strings.Join(row, " "), "Ready") || !strings.Contains(strings.Join(row, " "), "e2e") {
		t.Errorf("crictl pods:\n%s", out)
	}
	out = p.mustCrictl("pods", "-q", "--label", "app=crictl")
	if strings.TrimSpace(out) != pod {
		t.Errorf("crictl pods -q --label app=crictl: %q", out)
	}

	var inspectp struct {
		Status struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
		Info struct {
			Info map[string]any `json:"info"`
		} `json:"info"`
	}
	out = p.mustCrictl("inspectp", pod)
	if err := json.Unmarshal([]byte(out), &inspectp); err != nil {
		t.Fatalf("crictl inspectp output is not JSON: %v\n%s", err, out)
	}
	if s := inspectp.Status; s.ID != pod || s.State != "SANDBOX_READY" || s.Metadata.Name != "crictl-pod" || s.Metadata.Namespace != "e2e" || !strings.HasPrefix(s.Network.IP, strings.TrimSuffix(p.net.Subnet.IP.String(), "0")) {
		t.Errorf("crictl inspectp status: %+v", s)
	}

	out = p.mustCrictl("create", pod, ctrJSON, podJSON)
	ctr := strings.TrimSpace(out)
	if len(ctr) != 64 {
		t.Fatalf("crictl create printed %q, want a container ID", out)
	}
	out = p.mustCrictl("ps", "-a")
	if row := rowWith(out, "talker"); row == nil || row[0] != ctr[:13] || !strings.Contains(strings.Join(row, " "), "Created") {
		t.Errorf("crictl ps -a after create:\n%s", out)
	}
	if out = p.mustCrictl("start", ctr); strings.TrimSpace(out) != ctr {
		t.Errorf("crictl start printed %q", out)
	}
	out = p.mustCrictl("ps")
	if row := rowWith(out, "talker"); row == nil || !strings.Contains(strings.Join(row, " "), "Running") || !strings.Contains(strings.Join(row, " "), pod[:13]) {
		t.Errorf("crictl ps after start:\n%s", out)
	}

	var inspect struct {
		Status struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			LogPath  string `json:"logPath"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"status"`
	}
	out = p.mustCrictl("inspect", ctr)
	if err := json.Unmarshal([]byte(out), &inspect); err != nil {
		t.Fatalf("crictl inspect output is not JSON: %v\n%s", err, out)
	}
	if s := inspect.Status; s.ID != ctr || s.State != "CONTAINER_RUNNING" || s.Metadata.Name != "talker" || s.LogPath != filepath.Join(podLogs, "talker.log") {
		t.Errorf("crictl inspect status: %+v", s)
	}

	var logs string
	if !waitUntil(10*time.Second, func() bool {
		logs, _ = p.crictl("logs", ctr)
		return strings.Contains(logs, "hello-from-crictl")
	}) {
		t.Errorf("crictl logs: %q", logs)
	}
	// crictl logs prints stderr records on its own stderr.
	res := p.crictlOutErr("logs", ctr)
	if !strings.Contains(res.stderr, "to-stderr") {
		t.Errorf("crictl logs stderr: %q", res.stderr)
	}

	// crictl prints the command's stdout and stderr, each with a newline.
	if out = p.mustCrictl("exec", "-s", ctr, "sh", "-c", "echo exec-$((6*7)); busybox hostname"); out != "exec-42\ncrictl-host\n\n\n" {
		t.Errorf("crictl exec -s printed %q", out)
	}
	if res := p.crictlOutErr("exec", "-s", ctr, "sh", "-c", "exit 3"); res.code == 0 {
		t.Errorf("crictl exec -s of a failing command exited 0")
	}

	if out = p.mustCrictl("stop", "--timeout", "1", ctr); strings.TrimSpace(out) != ctr {
		t.Errorf("crictl stop printed %q", out)
	}
	out = p.mustCrictl("ps", "-a")
	if row := rowWith(out, "talker"); row == nil || !strings.Contains(strings.Join(row, " "), "Exited") {
		t.Errorf("crictl ps -a after stop:\n%s", out)
	}
	if out = p.mustCrictl("ps", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl ps -q after stop lists running containers: %q", out)
	}
	if out = p.mustCrictl("rm", ctr); strings.TrimSpace(out) != ctr {
		t.Errorf("crictl rm printed %q", out)
	}
	if out = p.mustCrictl("ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl ps -a -q after rm: %q", out)
	}

	if out = p.mustCrictl("stopp", pod); !strings.Contains(out, "Stopped sandbox "+pod) {
		t.Errorf("crictl stopp printed %q", out)
	}
	out = p.mustCrictl("pods")
	if row := rowWith(out, "crictl-pod"); row == nil || !strings.Contains(strings.Join(row, " "), "NotReady") {
		t.Errorf("crictl pods after stopp:\n%s", out)
	}
	if out = p.mustCrictl("rmp", pod); !strings.Contains(out, "Removed sandbox "+pod) {
		t.Errorf("crictl rmp printed %q", out)
	}
	if out = p.mustCrictl("pods", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl pods -q after rmp: %q", out)
	}
	checkPodGone(t, p, pod, []string{ctr})
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *podDaemon) mustCrictl(args ...string) string {
	p.t.Helper()
	out, err := p.crictl(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// crictlOutErr runs crictl and returns its stdout, stderr and exit code.
func (p *podDaemon) crictlOutErr(args ...string) berthdResult {
	p.t.Helper()
	_, err := p.crictl("version") // writes the config file
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(os.Getenv("CRICTL"), append([]string{"--config", filepath.Join(p.dir, "crictl.yaml")}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := berthdResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatal(err)
	}
	return res
}

// rowWith returns the fields of the first line of a crictl table that has
// a field equal to name.
func rowWith(table, name string) []string {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		for _, x := range f {
			if x == name {
				return f
			}
		}
	}
	return nil
}
