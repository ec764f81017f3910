package loadgen

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
	stat := "4242 (node (v20) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 11 0 100 0 0\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatalf("parseStatCPU: %v", err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Fatalf("parseStatCPU = %v, want %v (325 ticks)", got, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tswitchboard\nVmPeak:\t  99999 kB\nVmRSS:\t   18188 kB\nThreads:\t5\n"
	got, err := parseStatusRSS([]byte(status))
	if err != nil || got != 18188*1024 {
		t.Fatalf("parseStatusRSS = %d, %v; want %d", got, err, 18188*1024)
	}
	if _, err := parseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatalf("parseStatusRSS without VmRSS succeeded")
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatalf("ReadProc(self): %v", err)
	}
	if s.RSS <= 0 || s.CPU < 0 {
		t.Fatalf("ReadProc(self) = %+v", s)
	}
}
