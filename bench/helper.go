package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The in-process work (wiring the real router, the counting store, the
// flows) lives in api/internal/deviceflow/harness_bench_test.go: bench/ is
// outside api/ and may not import api/internal/.... We build that test
// binary once and run its TestBenchHelper with DEVICEGATE_BENCH_HELPER set.

const helperPkg = "./api/internal/deviceflow/"

// helper is the built test binary.
type helper struct {
	bin  string
	tags string
}

// buildHelper compiles the helper into dir. With the cosmos backend present
// in the tree it is built with -tags cosmos, so DEVICEGATE_TEST_COSMOS can
// use it.
func buildHelper(root, dir string) (*helper, error) {
	h := &helper{bin: filepath.Join(dir, "devicegate-bench.test")}
	args := []string{"test", "-c", "-o", h.bin}
	if _, err := os.Stat(filepath.Join(root, "api", "internal", "store", "cosmos")); err == nil {
		if _, err := os.Stat(filepath.Join(root, "api", "internal", "deviceflow", "cosmos_bench_test.go")); err == nil {
			h.tags = "cosmos"
			args = append(args, "-tags", "cosmos")
		}
	}
	args = append(args, helperPkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return h, nil
}

// command runs TestBenchHelper in mode with extra environment.
func (h *helper) command(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(h.bin, "-test.run", "^TestBenchHelper$", "-test.count", "1", "-test.timeout", "30m")
	cmd.Env = append(append(os.Environ(), "DEVICEGATE_BENCH_HELPER="+mode), env...)
	return cmd
}

// result runs a mode to completion (at most limit) and decodes its
// BENCHJSON line into v.
func (h *helper) result(mode string, limit time.Duration, v any, env ...string) error {
	cmd := h.command(mode, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	timer := time.AfterFunc(limit, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	var found bool
	var text strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if js, ok := strings.CutPrefix(line, "BENCHJSON "); ok && !found {
			if err := json.Unmarshal([]byte(js), v); err != nil {
				return fmt.Errorf("helper %s: %w", mode, err)
			}
			found = true
			continue
		}
		text.WriteString(line + "\n")
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("helper %s: %v\n%s", mode, err, text.String())
	}
	if !found {
		return errors.New("helper " + mode + " printed no result:\n" + text.String())
	}
	return nil
}

// Counts and results as the helper prints them (field names are the wire
// format shared with harness_bench_test.go).

type opCounts struct {
	Create, Get, GetByUserCode  int
	Update, UpdateNoWrite       int
	UpdateKnown                 int
	UpdateRetries, Delete, Incr int
	Ping                        int
	BindingReads, BindingWrites int
	WrittenBytes                []int
}

type cosmosStats struct {
	Reads, Writes, Deletes, Queries int
	RU                              float64
	Endpoint                        string
}

type flowResult struct {
	Flows, Polls int
	Steps        map[string]opCounts
	PerFlow      opCounts
	Uniform      bool
	Interval     string
	Rules        string
	Backend      string
	Cosmos       *cosmosStats
}

// The step names the helper uses, in flow order.
var flowSteps = []string{
	"authorize (POST /api/authorize)",
	"pending poll (POST /api/token), each",
	"verify page (GET /api/verify?user_code=…)",
	"allow (POST /api/verify action=allow)",
	"callback + upstream exchange (GET /api/callback)",
	"delivering poll (POST /api/token → tokens)",
}

const repeatStep = "(check) poll after delivery → invalid_grant"

func (h *helper) flows(n, polls int) (*flowResult, error) {
	var r flowResult
	err := h.result("flows", 10*time.Minute, &r, "DEVICEGATE_BENCH_FLOWS="+strconv.Itoa(n), "DEVICEGATE_BENCH_POLLS="+strconv.Itoa(polls))
	if err != nil {
		return nil, err
	}
	for _, s := range flowSteps {
		if _, ok := r.Steps[s]; !ok && (s != flowSteps[1] || polls > 0) {
			return nil, fmt.Errorf("flows: the helper reported no step %q (step names out of sync with harness_bench_test.go?)", s)
		}
	}
	return &r, nil
}

type allocResult struct {
	NsOp, AllocsOp, BytesOp int64
}

func (h *helper) allocs() (routed, construct allocResult, err error) {
	var r map[string]allocResult
	if err := h.result("allocs", 5*time.Minute, &r); err != nil {
		return routed, construct, err
	}
	return r["routed"], r["construct"], nil
}

// benchClientID is the public device client the helper's servers know
// (harness_bench_test.go).
const benchClientID = "bench"
