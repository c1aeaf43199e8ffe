package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/shim"
)

// ExecSync runs a command in a running container and returns its output.
// Each stream keeps at most exec_output_limit bytes; what was cut is said
// at the end of stderr, since the CRI response has no field for it.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, client, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(req.GetTimeout()) * time.Second
	res, err := client.ExecSync(ctx, shim.ExecSyncRequest{
		ID:        c.ID,
		Cmd:       req.GetCmd(),
		Timeout:   timeout,
		OutputCap: s.cfg.Runtime.ExecOutputLimit,
	})
	if err != nil {
		return nil, shimError(err)
	}
	if res.TimedOut {
		return nil, status.Errorf(codes.DeadlineExceeded, "command %q timed out after %s and was killed", req.GetCmd(), timeout)
	}
	stderr := res.Stderr
	for _, cut := range []struct {
		name string
		was  bool
	}{{"stdout", res.StdoutTruncated}, {"stderr", res.StderrTruncated}} {
		if cut.was {
			stderr = append(stderr, fmt.Sprintf("\n[berth: %s truncated after %d bytes]\n", cut.name, s.cfg.Runtime.ExecOutputLimit)...)
		}
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: stderr, ExitCode: res.ExitCode}, nil
}
