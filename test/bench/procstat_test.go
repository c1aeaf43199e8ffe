package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The name holds a space and a ')' so that naive splitting would
	// misnumber the fields; utime 250 and stime 50 ticks are 3s.
	line := "1234 (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000 200 18446744073709551615\n"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, want 3s", got)
	}
	if _, err := parseStatCPU("1 (x) S 1 2"); err == nil {
		t.Error("short line accepted")
	}
}

func TestCPUTimeOfSelf(t *testing.T) {
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tberthd\nVmPeak:\t 999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t8\n"
	m, err := parseStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 1<<20 || m.Peak != 2<<20 {
		t.Errorf("parseStatusMemory = %+v", m)
	}
	if _, err := parseStatusMemory("Name:\tkthread\n"); err == nil {
		t.Error("status without VmRSS accepted")
	}
	if _, err := processMemory(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
