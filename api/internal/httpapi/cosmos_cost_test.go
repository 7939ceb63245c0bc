package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store/cosmos"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// The Cosmos DB cost of the device flow, step by step, counted by the
// cosmos backend itself against the Cosmos-compatible test server
// (scripts/cosmos-server.sh). The test server charges 1 RU for every
// operation, so its RU figure is the operation count; what Azure charges
// is about 1 RU for a point read of a small item and about 5–6 RU for any
// write (create, replace, patch, upsert, delete) — docs/BENCHMARKS.md.
// The counts are deterministic, so the tests assert them exactly: a change
// that adds an operation to a step fails here and has to say why.

// costLine renders one step's operations.
func costLine(s cosmos.Stats) string {
	return fmt.Sprintf("%d read, %d create, %d replace, %d patch, %d upsert, %d delete, %d query, %d retry; %.0f RU (test server)",
		s.PointReads, s.Creates, s.Replaces, s.Patches, s.Upserts, s.Deletes, s.Queries, s.Retries, s.RU)
}

// cost is what one step must send to Cosmos DB.
type cost struct{ reads, creates, replaces, patches, upserts, deletes int64 }

func checkCost(t *testing.T, step string, s cosmos.Stats, want cost) {
	t.Helper()
	t.Logf("%-32s %s", step+":", costLine(s))
	got := cost{s.PointReads, s.Creates, s.Replaces, s.Patches, s.Upserts, s.Deletes}
	if got != want || s.Queries != 0 || s.Retries != 0 {
		t.Errorf("%s: got %+v (queries %d, retries %d), want %+v", step, got, s.Queries, s.Retries, want)
	}
}

// costHarness runs the router over a fresh Cosmos container with the
// configured rate limits' defaults (config: authorize 30/10m, verify
// 20/10m, poll misses 30/10m), the client at 127.0.0.1: an IPv4 address is
// counted as itself and in its /24.
func costHarness(t *testing.T) (*harness, *cosmos.Store) {
	c := storetest.NewClock()
	st := openCosmos(t, c)
	rule := func(n int) ratelimit.Rule { return ratelimit.Rule{Limit: n, Window: 10 * time.Minute} }
	h := newHarness(t, withBackend(st, c), withLimits(rule(30), rule(20), false),
		withFailureLimits(rule(10), rule(100), rule(30), rule(500)))
	// The first flow of a window creates the rate-limit counters; later
	// ones increment them, which is the steady state measured here.
	h.signIn("tv")
	return h, st
}

// TestCosmosCostPerPoll: a pending poll is one point read. Its pacing
// (when it polled last, its interval) stays in the instance that answered
// (store/cosmos pacing.go); an early poll answered slow_down costs the
// same read.
func TestCosmosCostPerPoll(t *testing.T) {
	h, st := costHarness(t)
	g := h.authorize("tv", "")
	for range 3 {
		st.ResetStats()
		wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
		checkCost(t, "pending poll", st.Stats(), cost{reads: 1})
		h.clock.Advance(5 * time.Second)
	}
	h.clock.Advance(-4 * time.Second) // one second after the last poll
	st.ResetStats()
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "slow_down")
	checkCost(t, "early poll (slow_down)", st.Stats(), cost{reads: 1})
}

// TestCosmosCostPerFlow: every step of a complete flow but the pending
// polls (TestCosmosCostPerPoll), in the steady state of a rate-limit
// window.
func TestCosmosCostPerFlow(t *testing.T) {
	h, st := costHarness(t)
	var total cosmos.Stats
	step := func(name string, want cost, do func()) {
		t.Helper()
		st.ResetStats()
		do()
		s := st.Stats()
		checkCost(t, name, s, want)
		total.PointReads += s.PointReads
		total.Creates += s.Creates
		total.Replaces += s.Replaces
		total.Patches += s.Patches
		total.Upserts += s.Upserts
		total.Deletes += s.Deletes
		total.RU += s.RU
	}
	var g grant
	step("authorize", cost{patches: 2, creates: 2}, func() { g = h.authorize("tv", "") })
	var csrf string
	step("verify page", cost{patches: 2, reads: 2}, func() { csrf = h.confirm(g.UserCode) })
	var q url.Values
	step("allow", cost{patches: 2, reads: 3, replaces: 1}, func() {
		res := h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"allow"}})
		if res.StatusCode != http.StatusFound {
			t.Fatalf("allow: %d %s", res.StatusCode, res.body)
		}
		loc, err := url.Parse(res.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		q = loc.Query()
	})
	step("callback", cost{reads: 2, replaces: 2, upserts: 1}, func() {
		code := "code-" + q.Get("state")[:8]
		h.provider.issue(code, q.Get("code_challenge"))
		res := h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("callback: %d %s", res.StatusCode, res.body)
		}
	})
	step("delivering poll", cost{reads: 1, replaces: 1}, func() {
		if res := h.poll("tv", g.DeviceCode); res.StatusCode != http.StatusOK {
			t.Fatalf("delivering poll: %d %s", res.StatusCode, res.body)
		}
	})
	t.Logf("whole flow but its pending polls: %s", costLine(total))
	writes := total.Creates + total.Replaces + total.Patches + total.Upserts + total.Deletes
	// Azure's charges for ~1 KB items (docs/BENCHMARKS.md): 1 RU a read,
	// 4.95–6.29 a write.
	t.Logf("at Azure's charges: %.1f–%.1f RU (%d reads, %d writes)", float64(total.PointReads)+4.95*float64(writes), 1.04*float64(total.PointReads)+6.29*float64(writes), total.PointReads, writes)
}
