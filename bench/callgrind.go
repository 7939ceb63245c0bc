package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Instructions per request, counted by valgrind's callgrind: a figure the
// machine's load does not move, to set beside the timed ratios of part 1.
//
// Each target is started under callgrind (GODEBUG=asyncpreemptoff=1:
// callgrind 3.19 aborts on the signal Go preempts goroutines with; and
// cpu.rdtscp=off: valgrind 3.19 does not emulate RDTSCP, which the runtime
// reads the clock with when a thread sleeps on a contended runtime lock —
// SIGILL on a loaded machine — so it uses RDTSC, as on CPUs without it), warmed
// up, its counters zeroed (callgrind_control -z), loaded with a fixed
// number of requests by bombardier, and dumped (callgrind_control -d). The
// count is user-space instructions of the server process only: the
// kernel's work for the socket reads and writes (the same for every target)
// is not in it.

// instrResult is one target's count.
type instrResult struct {
	Kind     string
	Requests int
	Ir       int64 // instructions over Requests
}

func (r instrResult) perRequest() float64 { return float64(r.Ir) / float64(r.Requests) }

// countInstructions measures every kind in kinds with n requests each.
func countInstructions(h *helper, g *bombardier, peerBin, dir string, kinds []string, n int, logf func(string, ...any)) ([]instrResult, error) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return nil, errors.New("valgrind not found")
	}
	if _, err := exec.LookPath("callgrind_control"); err != nil {
		return nil, errors.New("callgrind_control not found")
	}
	var out []instrResult
	for _, kind := range kinds {
		res, err := countOne(h, g, peerBin, dir, kind, n)
		if err != nil {
			return out, fmt.Errorf("%s: %w", kind, err)
		}
		logf("  %s: %.0f instructions per request", kind, res.perRequest())
		out = append(out, *res)
	}
	return out, nil
}

func countOne(h *helper, g *bombardier, peerBin, dir, kind string, n int) (*instrResult, error) {
	cgDir, err := os.MkdirTemp(dir, "callgrind-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cgDir)
	var inner *exec.Cmd
	if kind == "zitadel" {
		inner = exec.Command(peerBin)
	} else {
		sub := filepath.Join(cgDir, "data")
		if err := os.Mkdir(sub, 0o700); err != nil {
			return nil, err
		}
		inner = h.command("serve", "DEVICEGATE_BENCH_KIND="+kind, "DEVICEGATE_BENCH_DIR="+sub)
	}
	cmd := exec.Command("valgrind", append([]string{"-q", "--tool=callgrind", "--callgrind-out-file=" + filepath.Join(cgDir, "cg.out"), inner.Path}, inner.Args[1:]...)...)
	cmd.Env = append(inner.Environ(), "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off")
	p, err := startProc(kind+" (callgrind)", cmd)
	if err != nil {
		return nil, err
	}
	defer p.stop()

	c := loopbackClient()
	c.Timeout = time.Minute
	var req request
	switch kind {
	case "bare":
		req = request{URL: "http://" + p.addr + "/api/token", Body: bareBody, Headers: []string{formType}, Want: 400}
	case "zitadel":
		req, err = peerPoll(c, p)
	default:
		req, err = devicegatePoll(c, "http://"+p.addr)
	}
	if err == nil {
		err = checkPending(c, req)
	}
	if err != nil {
		return nil, err
	}
	// Warm-up, then count exactly n requests.
	if err := g.count(req, 4, 300); err != nil {
		return nil, err
	}
	pid := strconv.Itoa(p.pid())
	if b, err := exec.Command("callgrind_control", "-z", pid).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("callgrind_control -z: %v: %s", err, b)
	}
	if err := g.count(req, 4, n); err != nil {
		return nil, err
	}
	if b, err := exec.Command("callgrind_control", "-d", pid).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("callgrind_control -d: %v: %s", err, b)
	}
	ir, err := dumpTotal(cgDir)
	if err != nil {
		return nil, err
	}
	return &instrResult{Kind: kind, Requests: n, Ir: ir}, nil
}

// dumpTotal reads the instruction total of the dump callgrind_control -d
// wrote (cg.out.1, or cg.out.<pid>.1 with older file naming).
func dumpTotal(dir string) (int64, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "cg.out*.1"))
	if len(matches) != 1 {
		return 0, fmt.Errorf("expected one callgrind dump in %s, found %d", dir, len(matches))
	}
	f, err := os.Open(matches[0])
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "totals: "); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return 0, errors.New("no totals line in the callgrind dump")
}
