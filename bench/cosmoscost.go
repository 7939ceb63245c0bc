package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The Cosmos DB cost per operation, as the cost tests count it: the
// cosmos backend's own counters (cosmos.Stats) against the Cosmos-compatible
// test server, step by step, asserted exactly in
// api/internal/httpapi/cosmos_cost_test.go. The benchmark runs those tests
// and reads the table rows they log, so the report's goal figures are the
// tests' counts and cannot drift from what the backend sends.

// cosmosCostTests are the tests whose tables the report carries.
const cosmosCostTests = "^TestCosmosCostPer(Poll|Flow)$"

const cosmosCostPkg = "./api/internal/httpapi/"

// costStep is one row of a cost test's table.
type costStep struct {
	Step                                                string
	Reads, Creates, Replaces, Patches, Upserts, Deletes int
	Ops                                                 int
	RU                                                  float64 // at Azure's charges (the test's azureRU)
}

// cosmosCost is what the cost tests logged.
type cosmosCost struct {
	Cmd   string
	Steps []costStep
}

// step returns the row named name, nil if the tests logged none.
func (c *cosmosCost) step(name string) *costStep {
	if c == nil {
		return nil
	}
	for i := range c.Steps {
		if c.Steps[i].Step == name {
			return &c.Steps[i]
		}
	}
	return nil
}

// runCosmosCost runs the cost tests against DEVICEGATE_TEST_COSMOS (which
// scripts/bench.sh starts). Without it the tests would skip, so the part
// reports nothing rather than figures nobody measured.
func runCosmosCost(root string) (*cosmosCost, error) {
	if os.Getenv("DEVICEGATE_TEST_COSMOS") == "" {
		return nil, nil
	}
	args := []string{"test", "-count=1", "-run", cosmosCostTests, "-v", cosmosCostPkg}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	c := &cosmosCost{Cmd: "go " + strings.Join(args, " ")}
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", c.Cmd, err, out)
	}
	if c.Steps, err = parseCostRows(string(out)); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Cmd, err)
	}
	for _, want := range []string{"pending poll", "whole flow"} {
		if c.step(want) == nil {
			return nil, fmt.Errorf("%s logged no %q row (did a test skip?)\n%s", c.Cmd, want, out)
		}
	}
	return c, nil
}

// parseCostRows reads the tables' data rows: "| step | 8 numbers |".
func parseCostRows(out string) ([]costStep, error) {
	var steps []costStep
	for l := range strings.SplitSeq(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") || !strings.HasSuffix(l, "|") {
			continue
		}
		f := strings.Split(strings.Trim(l, "|"), "|")
		if len(f) != 9 {
			continue
		}
		name := strings.TrimSpace(f[0])
		if name == "step" || strings.HasPrefix(name, "---") {
			continue
		}
		var n [7]int
		for i := range n {
			v, err := strconv.Atoi(strings.TrimSpace(f[i+1]))
			if err != nil {
				return nil, fmt.Errorf("row %q: column %d: %w", l, i+2, err)
			}
			n[i] = v
		}
		ru, err := strconv.ParseFloat(strings.TrimSpace(f[8]), 64)
		if err != nil {
			return nil, fmt.Errorf("row %q: RU: %w", l, err)
		}
		steps = append(steps, costStep{Step: name, Reads: n[0], Creates: n[1], Replaces: n[2], Patches: n[3],
			Upserts: n[4], Deletes: n[5], Ops: n[6], RU: ru})
	}
	return steps, nil
}
