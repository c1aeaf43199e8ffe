package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runAsServer makes the test binary act as the command when the test
// starts it again with this variable set; it stays set across the re-exec
// that sets the title.
const runAsServer = "CRITEST_WEBSERVER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsServer) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The server must look like nginx to the process-namespace specs: its PID
// in the PID file, "nginx: master process" in its command line, and serve
// 200 on its port; its name must be in its log.
func TestServesWithTitleAndPIDFile(t *testing.T) {
	port := freePort(t)
	pidFile := filepath.Join(t.TempDir(), "nginx.pid")
	const title = "nginx: master process nginx -g daemon off;"
	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "-name", "nginx", "-port", strconv.Itoa(port), "-pidfile", pidFile, "-title", title)
	cmd.Env = append(os.Environ(), runAsServer+"=1")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		resp, err = http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer on port %d: %v; stderr: %s", port, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "nginx") {
		t.Errorf("GET /: %d %q", resp.StatusCode, body)
	}

	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	// The re-exec keeps the PID: the file names the process that serves.
	if got := strings.TrimSpace(string(pid)); got != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("PID file says %q, the server is %d", got, cmd.Process.Pid)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(cmdline), title+"\x00") {
		t.Errorf("cmdline %q does not start with the title", cmdline)
	}
	if !strings.Contains(stderr.String(), "nginx: serving HTTP on :"+strconv.Itoa(port)) {
		t.Errorf("log %q does not name the server", stderr.String())
	}
}
