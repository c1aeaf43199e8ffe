package server

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestAppendCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"":           "",
		"abc":        "abc",
		"a\nb\n":     "a\r\nb\r\n",
		"\n\n":       "\r\n\r\n",
		"x\r\ny":     "x\r\r\ny",
		"no newline": "no newline",
	} {
		if got := string(appendCRLF(nil, []byte(in))); got != want {
			t.Errorf("appendCRLF(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStreamValidators(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		field string // "" means valid
	}{
		{"exec ok", validateExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Stdout: true}), ""},
		{"exec tty stdin", validateExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Stdin: true, Tty: true}), ""},
		{"exec no id", validateExec(&runtimeapi.ExecRequest{Cmd: []string{"sh"}, Stdout: true}), "container_id"},
		{"exec no cmd", validateExec(&runtimeapi.ExecRequest{ContainerId: "c", Stdout: true}), "cmd"},
		{"exec no streams", validateExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}}), "stdin"},
		{"exec tty stderr", validateExec(&runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Tty: true, Stderr: true}), "stderr"},
		{"attach ok", validateAttach(&runtimeapi.AttachRequest{ContainerId: "c", Stderr: true}), ""},
		{"attach no id", validateAttach(&runtimeapi.AttachRequest{Stdout: true}), "container_id"},
		{"attach no streams", validateAttach(&runtimeapi.AttachRequest{ContainerId: "c"}), "stdin"},
		{"attach tty stderr", validateAttach(&runtimeapi.AttachRequest{ContainerId: "c", Tty: true, Stdout: true, Stderr: true}), "stderr"},
		{"forward ok", validatePortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p", Port: []int32{80, 65535}}), ""},
		{"forward no ports", validatePortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p"}), ""},
		{"forward no id", validatePortForward(&runtimeapi.PortForwardRequest{}), "pod_sandbox_id"},
		{"forward port 0", validatePortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p", Port: []int32{80, 0}}), "port[1]"},
		{"forward port too big", validatePortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p", Port: []int32{65536}}), "port[0]"},
	} {
		if tc.field == "" {
			if tc.err != nil {
				t.Errorf("%s: %v", tc.name, tc.err)
			}
			continue
		}
		if status.Code(tc.err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(tc.err).Message(), tc.field+":") {
			t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, tc.err, tc.field)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("gone") }

// copyOut tells the end of the source from a client that went away.
func TestCopyOut(t *testing.T) {
	var dst bytes.Buffer
	if e := copyOut(&dst, strings.NewReader("hello")); e != sourceEnded || dst.String() != "hello" {
		t.Errorf("copy of a finite source: %v, %q", e, dst.String())
	}
	if e := copyOut(failWriter{}, strings.NewReader("hello")); e != clientGone {
		t.Errorf("copy to a failing client: %v, want clientGone", e)
	}
}
