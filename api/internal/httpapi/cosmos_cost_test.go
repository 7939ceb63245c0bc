package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
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
	var table strings.Builder
	for i := range 3 {
		st.ResetStats()
		wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
		checkCost(t, "pending poll", st.Stats(), cost{reads: 1})
		if i == 0 {
			table.WriteString(costRow("pending poll", st.Stats()))
		}
		h.clock.Advance(5 * time.Second)
	}
	h.clock.Advance(-4 * time.Second) // one second after the last poll
	st.ResetStats()
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "slow_down")
	checkCost(t, "early poll (slow_down)", st.Stats(), cost{reads: 1})
	table.WriteString(costRow("early poll (slow_down)", st.Stats()))
	logCostTable(t, table.String())
}

// TestCosmosCostPerFlow: every step of a complete flow but the pending
// polls (TestCosmosCostPerPoll), in the steady state of a rate-limit
// window, from an IPv4 address. Where each operation goes:
//
//	authorize    1 patch: the authorize limit's count of the address and
//	             of its /24, in one item (ratelimit: store IncrMember);
//	             2 creates: the user-code key item and the record
//	verify page  1 patch (the verify limit); 2 reads: user-code key item
//	             → record
//	allow        1 patch (the verify limit, which decisions share);
//	             2 reads (the lookup again: the page may be stale);
//	             1 replace over what they read (If-Match, no read of its
//	             own: store.UpdateKnown): pending → authorizing, with
//	             the state hash and the sealed PKCE verifier
//	callback     1 read + 1 replace: the claim, which spends the state
//	             before the code is exchanged, so a replayed callback
//	             cannot exchange again; 1 replace over the claim's
//	             result (UpdateKnown): the sealed tokens; 1 upsert: the
//	             refresh-token binding
//	delivering   1 read + 1 replace: approved → delivered, the one
//	poll         compare-and-swap that hands the tokens out once
//
// An IPv6 client costs one patch more per rate-limited request (its /48
// is counted apart from its /64 and /56).
func TestCosmosCostPerFlow(t *testing.T) {
	h, st := costHarness(t)
	var total cosmos.Stats
	var table strings.Builder
	row := func(name string, s cosmos.Stats) { table.WriteString(costRow(name, s)) }
	step := func(name string, want cost, do func()) {
		t.Helper()
		st.ResetStats()
		do()
		s := st.Stats()
		checkCost(t, name, s, want)
		row(name, s)
		total.PointReads += s.PointReads
		total.Creates += s.Creates
		total.Replaces += s.Replaces
		total.Patches += s.Patches
		total.Upserts += s.Upserts
		total.Deletes += s.Deletes
		total.RU += s.RU
	}
	var g grant
	step("authorize", cost{patches: 1, creates: 2}, func() { g = h.authorize("tv", "") })
	var csrf string
	step("verify page", cost{patches: 1, reads: 2}, func() { csrf = h.confirm(g.UserCode) })
	var q url.Values
	step("allow", cost{patches: 1, reads: 2, replaces: 1}, func() {
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
	step("callback", cost{reads: 1, replaces: 2, upserts: 1}, func() {
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
	row("whole flow", total)
	t.Logf("whole flow but its pending polls: %s", costLine(total))
	logCostTable(t, table.String())
}

// costRow is one step as a row of the table logCostTable prints; bench/
// (cosmoscost.go) reads these rows from `go test -v` for the report's
// Cosmos DB figures, so the report's counts are these tests' counts.
func costRow(name string, s cosmos.Stats) string {
	ops := s.PointReads + s.Creates + s.Replaces + s.Patches + s.Upserts + s.Deletes
	return fmt.Sprintf("| %-22s | %5d | %7d | %8d | %7d | %7d | %7d | %3d | %6.2f |\n", name,
		s.PointReads, s.Creates, s.Replaces, s.Patches, s.Upserts, s.Deletes, ops, azureRU(s))
}

func logCostTable(t *testing.T, rows string) {
	t.Helper()
	t.Logf("per step (ops = RU on the test server, which charges 1 RU an operation; est. Azure RU at %.2f a read, %.2f a write):\n"+
		"| step                   | reads | creates | replaces | patches | upserts | deletes | ops | est. RU |\n"+
		"|------------------------|------:|--------:|---------:|--------:|--------:|--------:|----:|--------:|\n%s", azureReadRU, azureWriteRU, rows)
}

// Azure's charges for items under 1 KB, as bench/ru.go estimates them
// (Microsoft Learn, "Understand request unit consumption": a 1 KB point
// read 1.00 RU, a 1 KB write 4.95 RU with default indexing; the Bicep
// template indexes nothing, so writes there cost no more than this).
// Every item of a flow is under 1 KB with Cosmos DB's own properties.
const (
	azureReadRU  = 1.00
	azureWriteRU = 4.95
)

// azureRU estimates what Azure charges for s.
func azureRU(s cosmos.Stats) float64 {
	return azureReadRU*float64(s.PointReads) + azureWriteRU*float64(s.Creates+s.Replaces+s.Patches+s.Upserts+s.Deletes)
}

// TestCosmosCostPerLimitedRequest: what a rate limit on a client address
// sends to Cosmos DB per request, in the steady state of a window. An IPv4
// address and its /24 are one item (ratelimit's group of the /24, a field
// per address): one patch, for an allowed request and a counted failure
// alike. An IPv6 /64 and its /56 are one item, its /48 another: two.
func TestCosmosCostPerLimitedRequest(t *testing.T) {
	c := storetest.NewClock()
	st := openCosmos(t, c)
	l := ratelimit.New(st, slog.New(slog.NewTextHandler(io.Discard, nil))).WithClock(c.Now)
	rule := ratelimit.Rule{Limit: 30, Window: 10 * time.Minute}
	ctx := context.Background()
	v4, v6 := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8:1:2::7")
	for _, tc := range []struct {
		name    string
		ip      netip.Addr
		patches int64
		do      func(ip netip.Addr) bool
	}{
		{"allowed, IPv4", v4, 1, func(ip netip.Addr) bool { ok, _ := l.AllowAddr(ctx, "verify", rule, ip); return ok }},
		{"allowed, IPv6", v6, 2, func(ip netip.Addr) bool { ok, _ := l.AllowAddr(ctx, "verify", rule, ip); return ok }},
		{"failure, IPv4", v4, 1, func(ip netip.Addr) bool { over, _ := l.FailAddr(ctx, "poll-miss", rule, ip); return !over }},
		{"failure, IPv6", v6, 2, func(ip netip.Addr) bool { over, _ := l.FailAddr(ctx, "poll-miss", rule, ip); return !over }},
	} {
		tc.do(tc.ip) // the window's first event creates the items
		st.ResetStats()
		if !tc.do(tc.ip) {
			t.Fatalf("%s: refused within the limit", tc.name)
		}
		checkCost(t, tc.name, st.Stats(), cost{patches: tc.patches})
	}
}
