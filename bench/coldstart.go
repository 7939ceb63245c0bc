package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// coldResult is the cold-start measurement of the real binary.
type coldResult struct {
	Runs        int
	Median, P90 time.Duration
	Min, Max    time.Duration
	BinaryBytes int64
	BuildCmd    string
	RunCmd      string
	RSSIdleKB   int // VmRSS of the real binary just after its first 200, median
}

// buildBinary builds api/ as a release would.
func buildBinary(root, dir string) (string, string, error) {
	bin := filepath.Join(dir, "devicegate")
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./api"}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build: %v: %s", err, b)
	}
	return bin, `CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o devicegate ./api`, nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// coldStart execs the binary runs times (memory store, -demo) and times each
// from exec to the first 200 on /api/health. Each wait is bounded by 10 s.
func coldStart(root string, runs int) (*coldResult, error) {
	dir, err := os.MkdirTemp("", "devicegate-bench-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, buildCmd, err := buildBinary(root, dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	res := &coldResult{Runs: runs, BinaryBytes: fi.Size(), BuildCmd: buildCmd,
		RunCmd: "DEVICEGATE_STORE=memory ./devicegate -demo -addr 127.0.0.1:PORT"}
	client := loopbackClient()
	client.Timeout = time.Second
	var times []time.Duration
	var rss []int
	for attempts := 0; len(times) < runs; attempts++ {
		if attempts >= runs+3 {
			return nil, errors.New("cold start: devicegate kept exiting early (port taken?)")
		}
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-demo", "-addr", addr)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "DEVICEGATE_STORE=memory"}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var el time.Duration
		early := false
		for !early {
			res, err := client.Get("http://" + addr + "/api/health")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					el = time.Since(t0)
					break
				}
			}
			if time.Since(t0) > 10*time.Second {
				_ = cmd.Process.Kill()
				<-done
				return nil, errors.New("cold start: no 200 on /api/health within 10s")
			}
			select {
			case err := <-done:
				// Most likely another process took the port between
				// freeLoopbackAddr and the listen; try again, boundedly.
				fmt.Fprintf(os.Stderr, "  cold start: devicegate exited early (%v); retrying\n", err)
				early = true
			case <-time.After(200 * time.Microsecond):
			}
		}
		if early {
			continue
		}
		times = append(times, el)
		rss = append(rss, readStatusKB(cmd.Process.Pid, "VmRSS"))
		client.Transport.(*http.Transport).CloseIdleConnections()
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return nil, errors.New("cold start: devicegate did not stop within 10s of SIGINT")
		}
	}
	slices.Sort(times)
	slices.Sort(rss)
	res.Median = percentile(times, 0.5)
	res.P90 = percentile(times, 0.9)
	res.Min, res.Max = times[0], times[len(times)-1]
	res.RSSIdleKB = rss[len(rss)/2]
	return res, nil
}

// percentile of sorted, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
