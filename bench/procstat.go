package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// procSample is what the kernel has counted for one process so far: its
// CPU time split into user and kernel (system) time, and its read- and
// write-class system calls. Part 1 takes one before and one after each
// measured run: divided by the requests answered, it says where a
// request's cost lies — the share callgrind (user space only) cannot see.
type procSample struct {
	User, Sys     time.Duration
	Reads, Writes uint64 // syscr, syscw of /proc/PID/io
	WriteBytes    uint64 // write_bytes: what the process sent to storage
	ok            bool
}

// sampleProc reads /proc/PID/stat and /proc/PID/io. A process that has
// gone (or a system without /proc) gives a sample with ok false, which
// sub refuses, so a missing figure is shown as missing, never as zero.
func sampleProc(pid int) procSample {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	st, err := os.ReadFile(dir + "stat")
	if err != nil {
		return procSample{}
	}
	// The command name (field 2) may hold spaces; count from its ')'.
	_, rest, ok := strings.Cut(string(st), ") ")
	f := strings.Fields(rest) // f[0] is field 3 (state)
	if !ok || len(f) < 13 {
		return procSample{}
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procSample{}
	}
	// In clock ticks of 1/100 s (Linux's USER_HZ).
	s := procSample{User: time.Duration(utime) * 10 * time.Millisecond, Sys: time.Duration(stime) * 10 * time.Millisecond}
	io, err := os.ReadFile(dir + "io")
	if err != nil {
		return procSample{}
	}
	var seen int
	for line := range strings.SplitSeq(string(io), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "syscr":
			s.Reads, seen = n, seen+1
		case "syscw":
			s.Writes, seen = n, seen+1
		case "write_bytes":
			s.WriteBytes, seen = n, seen+1
		}
	}
	s.ok = seen == 3
	return s
}

// sub is what was counted between before and s: whole only when both
// samples are.
func (s procSample) sub(before procSample) procSample {
	if !s.ok || !before.ok {
		return procSample{}
	}
	return procSample{User: s.User - before.User, Sys: s.Sys - before.Sys, Reads: s.Reads - before.Reads, Writes: s.Writes - before.Writes,
		WriteBytes: s.WriteBytes - before.WriteBytes, ok: true}
}

// perRequest is a server's cost per answered request over a set of runs:
// CPU microseconds in user space and in the kernel, and system calls.
type perRequest struct {
	UserUS, SysUS         float64
	ReadCalls, WriteCalls float64
	Requests              int
}

// costPerRequest sums the runs' process counts and divides by their
// requests; ok is false when any run lacks its counts.
func costPerRequest(runs []*loadResult) (perRequest, bool) {
	var sum procSample
	n := 0
	for _, r := range runs {
		if !r.Proc.ok {
			return perRequest{}, false
		}
		sum.User += r.Proc.User
		sum.Sys += r.Proc.Sys
		sum.Reads += r.Proc.Reads
		sum.Writes += r.Proc.Writes
		n += r.Requests
	}
	if n == 0 {
		return perRequest{}, false
	}
	f := float64(n)
	return perRequest{
		UserUS: float64(sum.User.Microseconds()) / f, SysUS: float64(sum.Sys.Microseconds()) / f,
		ReadCalls: float64(sum.Reads) / f, WriteCalls: float64(sum.Writes) / f, Requests: n,
	}, true
}
