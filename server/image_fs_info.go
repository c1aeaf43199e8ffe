package server

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageFsInfo reports the bytes and inodes the image store uses. The figures
// are kept current as content is added and removed, so this is cheap.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	bytes, inodes := s.images.Usage()
	fs := &runtimeapi.FilesystemUsage{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.images.Dir()},
		UsedBytes:  &runtimeapi.UInt64Value{Value: uint64(bytes)},
		InodesUsed: &runtimeapi.UInt64Value{Value: uint64(inodes)},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}}, nil
}
