package images

import "runtime/debug"

// freeOSMemory is debug.FreeOSMemory; tests count the calls.
var freeOSMemory = debug.FreeOSMemory

// pullDone ends a pull. When it was the last one in progress, the memory
// its downloads and decompressors used is handed back to the node at once.
// A pull takes megabytes of short-lived buffers; left to itself the Go
// runtime keeps that heap for a while, and for a daemon that pulls rarely
// and then idles it would stay resident. The collection runs on its own
// goroutine, after the pull has answered, and costs about a millisecond.
func (s *Service) pullDone() {
	if s.pulling.Add(-1) == 0 {
		go freeOSMemory()
	}
}
