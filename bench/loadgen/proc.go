package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on Linux).
const clockTicks = 100

// ProcSample is one reading of a process's CPU time and resident memory.
type ProcSample struct {
	At  time.Time
	CPU time.Duration // user + system, every thread included
	RSS int64         // bytes
}

// ReadProc reads /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmRSS).
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.CPU, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.RSS, err = parseStatusRSS(status)
	return s, err
}

// ReadProcs reads every process of pids and sums their CPU time and RSS, for a server made of
// several processes (a cluster of nodes).
func ReadProcs(pids []int) (ProcSample, error) {
	var sum ProcSample
	for _, pid := range pids {
		s, err := ReadProc(pid)
		if err != nil {
			return sum, err
		}
		sum.At, sum.CPU, sum.RSS = s.At, sum.CPU+s.CPU, sum.RSS+s.RSS
	}
	return sum, nil
}

// parseStatCPU returns utime + stime (fields 14 and 15) of a /proc/<pid>/stat line.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0, fmt.Errorf("loadgen: /proc stat without a command name")
	}
	fields := bytes.Fields(stat[i+1:]) // fields[0] is field 3 (state)
	if len(fields) < 13 {
		return 0, fmt.Errorf("loadgen: /proc stat has %d fields", len(fields)+2)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadgen: /proc stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parseStatusRSS returns VmRSS of a /proc/<pid>/status file in bytes.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("loadgen: VmRSS: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("loadgen: no VmRSS in /proc status")
}

// ReadWritten sums wchar of /proc/<pid>/io over pids: the bytes the processes handed to write
// calls, sockets included (a server that logs little writes almost only to its clients).
func ReadWritten(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			return 0, err
		}
		n, err := parseIOWritten(b)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// parseIOWritten returns the wchar line of a /proc/<pid>/io file.
func parseIOWritten(io []byte) (int64, error) {
	for line := range bytes.Lines(io) {
		if rest, ok := bytes.CutPrefix(line, []byte("wchar:")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("loadgen: wchar: %w", err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("loadgen: no wchar in /proc io")
}
