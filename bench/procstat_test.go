package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestSampleProcCountsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	before := sampleProc(os.Getpid())
	if !before.ok {
		t.Fatalf("sampleProc of this process: %+v, want a whole sample", before)
	}
	// Spend CPU in user space until the 10 ms tick moves, and make write
	// calls the kernel counts.
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 100 {
		if _, err := f.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for sampleProc(os.Getpid()).User == before.User && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
	}
	d := sampleProc(os.Getpid()).sub(before)
	if !d.ok {
		t.Fatal("sub of two whole samples: not ok")
	}
	if d.User <= 0 {
		t.Errorf("user CPU did not move in 5 s of spinning (x=%d)", x)
	}
	if d.Writes < 100 {
		t.Errorf("write calls counted: %d, want at least the 100 made", d.Writes)
	}
}

func TestSampleProcOfNoProcess(t *testing.T) {
	s := sampleProc(-1)
	if s.ok {
		t.Fatalf("sample of pid -1: %+v, want not ok", s)
	}
	if sampleProc(os.Getpid()).sub(s).ok {
		t.Error("sub with a missing sample reported ok")
	}
}

func TestCostPerRequest(t *testing.T) {
	runs := []*loadResult{
		{Requests: 1000, Proc: procSample{User: 30 * time.Millisecond, Sys: 10 * time.Millisecond, Reads: 1000, Writes: 2000, ok: true}},
		{Requests: 3000, Proc: procSample{User: 50 * time.Millisecond, Sys: 70 * time.Millisecond, Reads: 3000, Writes: 6000, ok: true}},
	}
	got, ok := costPerRequest(runs)
	want := perRequest{UserUS: 20, SysUS: 20, ReadCalls: 1, WriteCalls: 2, Requests: 4000}
	if !ok || got != want {
		t.Fatalf("costPerRequest = %+v, %v; want %+v", got, ok, want)
	}
	runs[1].Proc.ok = false
	if _, ok := costPerRequest(runs); ok {
		t.Error("a run without counts still gave a figure")
	}
	if _, ok := costPerRequest(nil); ok {
		t.Error("no runs gave a figure")
	}
}
