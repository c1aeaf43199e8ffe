package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
)

// panicky stands in for handlers so the wrapper can be tested alone.
type panicky struct {
	runtimeapi.UnimplementedImageServiceServer
	runtimeapi.UnimplementedRuntimeServiceServer
	err   error
	calls int
}

func (p *panicky) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	var m map[string]int
	m["boom"] = 1 // nil map write: a handler bug
	return nil, nil
}

func (p *panicky) ListImages(context.Context, *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	return nil, p.err
}

func (p *panicky) PullImage(context.Context, *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	p.calls++
	return &runtimeapi.PullImageResponse{}, nil
}

func serve(t *testing.T, impl *panicky) (runtimeapi.ImageServiceClient, runtimeapi.RuntimeServiceClient) {
	lis := bufconn.Listen(1 << 20)
	log := logrus.New()
	log.SetOutput(io.Discard)
	g := grpc.NewServer(Interceptors(logrus.NewEntry(log), nil)...)
	runtimeapi.RegisterImageServiceServer(g, impl)
	runtimeapi.RegisterRuntimeServiceServer(g, impl)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///buf", grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return lis.Dial() }), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewImageServiceClient(conn), runtimeapi.NewRuntimeServiceClient(conn)
}

func TestPanicBecomesInternalAndServingGoesOn(t *testing.T) {
	impl := &panicky{}
	img, rt := serve(t, impl)
	_, err := img.ImageFsInfo(context.Background(), &runtimeapi.ImageFsInfoRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "ImageFsInfo") {
		t.Fatalf("panic answered %v", err)
	}
	if _, err := img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}}); err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
	if _, err := rt.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unbuilt RPC answered %v", err)
	}
}

func TestValidationNamesField(t *testing.T) {
	impl := &panicky{}
	img, _ := serve(t, impl)
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"pull without image", func() error {
			_, err := img.PullImage(context.Background(), &runtimeapi.PullImageRequest{})
			return err
		}, "image"},
		{"pull empty name", func() error {
			_, err := img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{}})
			return err
		}, "image.image"},
		{"pull bad name", func() error {
			_, err := img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "Not Valid"}})
			return err
		}, "image.image"},
		{"pull bad auth", func() error {
			_, err := img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}, Auth: &runtimeapi.AuthConfig{Auth: "%%%"}})
			return err
		}, "auth.auth"},
		{"status empty", func() error {
			_, err := img.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{}})
			return err
		}, "image.image"},
		{"remove nil", func() error {
			_, err := img.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{})
			return err
		}, "image"},
	}
	for _, c := range cases {
		err := c.call()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), c.field+":") {
			t.Errorf("%s: %v (want InvalidArgument naming %s)", c.name, err, c.field)
		}
	}
	if impl.calls != 0 {
		t.Fatalf("handler ran %d times for invalid requests", impl.calls)
	}
}

func TestErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("x: %w", images.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", images.ErrUnauthorized), codes.Unauthenticated},
		{fmt.Errorf("x: %w", images.ErrForbidden), codes.PermissionDenied},
		{fmt.Errorf("x: %w", images.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("x: %w", images.ErrNoProgress), codes.DeadlineExceeded},
		{fmt.Errorf("x: %w", images.ErrBadContent), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", images.ErrInvalid), codes.InvalidArgument},
		{context.Canceled, codes.Canceled},
		{errors.New("other"), codes.Unknown},
		{status.Error(codes.AlreadyExists, "kept"), codes.AlreadyExists},
	}
	impl := &panicky{}
	img, _ := serve(t, impl)
	for _, c := range cases {
		impl.err = c.err
		_, err := img.ListImages(context.Background(), &runtimeapi.ListImagesRequest{})
		if status.Code(err) != c.code {
			t.Errorf("%v: got %v want %v", c.err, status.Code(err), c.code)
		}
		if !strings.Contains(err.Error(), strings.TrimPrefix(c.err.Error(), "rpc error: code = AlreadyExists desc = ")) {
			t.Errorf("%v: text lost: %v", c.err, err)
		}
	}
}
