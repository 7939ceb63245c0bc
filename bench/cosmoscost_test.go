package main

import "testing"

// A cost test's -v output as go test prints it: the table comes indented
// under the log line that starts it, beside other log lines.
const costOutput = `=== RUN   TestCosmosCostPerPoll
    cosmos_cost_test.go:74: pending poll:   1 read, 0 create, 0 replace, 0 patch, 0 upsert, 0 delete, 0 query, 0 retry; 1 RU (test server)
    cosmos_cost_test.go:85: per step (ops = RU on the test server, which charges 1 RU an operation; est. Azure RU at 1.00 a read, 4.95 a write):
        | step                   | reads | creates | replaces | patches | upserts | deletes | ops | est. RU |
        |------------------------|------:|--------:|---------:|--------:|--------:|--------:|----:|--------:|
        | pending poll           |     1 |       0 |        0 |       0 |       0 |       0 |   1 |   1.00 |
--- PASS: TestCosmosCostPerPoll (0.16s)
=== RUN   TestCosmosCostPerFlow
        | callback               |     1 |       0 |        2 |       0 |       1 |       0 |   4 |  15.85 |
        | whole flow             |     6 |       2 |        4 |       3 |       1 |       0 |  16 |  55.50 |
--- PASS: TestCosmosCostPerFlow (0.07s)
`

func TestParseCostRows(t *testing.T) {
	steps, err := parseCostRows(costOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := []costStep{
		{Step: "pending poll", Reads: 1, Ops: 1, RU: 1},
		{Step: "callback", Reads: 1, Replaces: 2, Upserts: 1, Ops: 4, RU: 15.85},
		{Step: "whole flow", Reads: 6, Creates: 2, Replaces: 4, Patches: 3, Upserts: 1, Ops: 16, RU: 55.5},
	}
	if len(steps) != len(want) {
		t.Fatalf("got %d rows %+v, want %d", len(steps), steps, len(want))
	}
	for i := range want {
		if steps[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, steps[i], want[i])
		}
	}
	c := &cosmosCost{Steps: steps}
	if s := c.step("whole flow"); s == nil || s.ops() != "6 read, 2 create, 4 replace, 3 patch, 1 upsert" {
		t.Errorf("whole flow ops = %v", s)
	}
	if (*cosmosCost)(nil).step("whole flow") != nil {
		t.Error("a run without the part has no rows")
	}
}

func TestParseCostRowsRefusesGarbledNumbers(t *testing.T) {
	for _, row := range []string{
		"| pending poll | 1 | x | 0 | 0 | 0 | 0 | 1 | 1.00 |",
		"| pending poll | 1 | 0 | 0 | 0 | 0 | 0 | 1 | one |",
	} {
		if _, err := parseCostRows(row); err == nil {
			t.Errorf("%q: no error", row)
		}
	}
}

func TestCosmosGoals(t *testing.T) {
	r := &report{Cosmos: &cosmosCost{Steps: []costStep{
		{Step: "pending poll", Reads: 1, Ops: 1, RU: 1},
		{Step: "whole flow", Reads: 6, Creates: 2, Ops: 8, RU: 55.5},
	}}}
	g := r.cosmosGoals()
	if !g[0].Ran || !g[0].Met || !g[1].Ran || g[1].Met {
		t.Errorf("goals = %+v, want poll met, flow not met", g)
	}
	if g := (&report{}).cosmosGoals(); g[0].Ran || g[1].Ran {
		t.Errorf("without the part the goals must read not measured: %+v", g)
	}
}
