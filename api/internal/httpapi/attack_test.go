package httpapi_test

// Attacks on the public edge, each written to fail before its fix (issue
// "Every guess counted, every refresh bound"). SECURITY.md names them.

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
)

// guessCode is the i-th guessed user code: valid in shape, almost surely
// no live code.
func guessCode(i int) string {
	const alphabet = "BCDFGHJKLMNPQRSTVWXZ"
	b := []byte("BBBBBBBB")
	for j := 7; j >= 0 && i > 0; j-- {
		b[j] = alphabet[i%len(alphabet)]
		i /= len(alphabet)
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// decide posts an Allow or Deny with the browser's cookies.
func (h *harness) decide(code, csrf, action string) *response {
	h.t.Helper()
	return h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {code}, "csrf": {csrf}, "action": {action}})
}

// TestGuessedDecisionsShareTheVerifyBudget: an attacker takes a good form
// token from their own code's page and posts Allow (or Deny) with guessed
// codes. Every one of those posts counts against the same per-address
// budget as showing a code, before the store is read: with a limit of 3,
// at most 3 requests in all are processed; the rest get 429 with
// Retry-After and read nothing. A victim's live code guessed among them is
// neither sent upstream nor denied, and the victim's device keeps getting
// authorization_pending.
func TestGuessedDecisionsShareTheVerifyBudget(t *testing.T) {
	for _, action := range []string{"allow", "deny"} {
		t.Run(action, func(t *testing.T) {
			const limit = 3
			h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{Limit: limit, Window: 10 * time.Minute}, false))
			victim := h.authorize("tv", "")
			own := h.authorize("tv", "")
			token := h.confirm(own.UserCode) // request 1 of the budget
			reads := h.store.Calls(faulty.OpGetByUserCode)
			processed, limited := 1, 0
			for i := range 60 {
				code := guessCode(i + 1)
				if i == 30 {
					code = victim.UserCode
				}
				res := h.decide(code, token, action)
				switch res.StatusCode {
				case http.StatusTooManyRequests:
					limited++
					if res.Header.Get("Retry-After") == "" {
						t.Errorf("post %d: 429 without Retry-After", i)
					}
				default:
					processed++
				}
			}
			if processed > limit {
				t.Errorf("%d requests processed from one address under a limit of %d", processed, limit)
			}
			if limited != 60-(limit-1) {
				t.Errorf("%d posts limited, want %d", limited, 60-(limit-1))
			}
			if got := h.store.Calls(faulty.OpGetByUserCode) - reads; got > limit-1 {
				t.Errorf("%d user-code reads for %d posts: limited posts reached the store", got, 60)
			}
			res := h.poll("tv", victim.DeviceCode)
			wantOAuthError(t, res, http.StatusBadRequest, "authorization_pending")
			rec, err := h.record(victim.UserCode)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Status != store.StatusPending || rec.StateHash != "" || rec.Failures != 0 {
				t.Errorf("the victim's record was touched: %+v", rec)
			}
		})
	}
}

// TestDecisionTokenBoundToRecord: with no rate limit at all, a token taken
// from the attacker's own code's page is refused for the victim's code,
// for Allow and for Deny; the victim's device still waits, and the forged
// attempts count toward the victim code's lockout.
func TestDecisionTokenBoundToRecord(t *testing.T) {
	h := newHarness(t)
	victim := h.authorize("tv", "")
	own := h.authorize("tv", "")
	token := h.confirm(own.UserCode)
	for _, action := range []string{"allow", "deny"} {
		res := h.decide(victim.UserCode, token, action)
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("%s on the victim's code with a token from another code: %d", action, res.StatusCode)
		}
		if loc := res.Header.Get("Location"); loc != "" {
			t.Errorf("%s was redirected to %s", action, loc)
		}
	}
	wantOAuthError(t, h.poll("tv", victim.DeviceCode), http.StatusBadRequest, "authorization_pending")
	rec, err := h.record(victim.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != store.StatusPending || rec.Failures != 2 {
		t.Errorf("victim record: status %s, failures %d; want pending with 2 failures", rec.Status, rec.Failures)
	}
	// The token still works for the code whose page showed it.
	if res := h.decide(own.UserCode, token, "allow"); res.StatusCode != http.StatusFound {
		t.Errorf("allow on the attacker's own code: %d", res.StatusCode)
	}
	// And a token from the victim's own page works for the victim.
	if res := h.decide(victim.UserCode, h.confirm(victim.UserCode), "allow"); res.StatusCode != http.StatusFound {
		t.Errorf("the victim's own allow: %d", res.StatusCode)
	}
}

// TestLockoutCountsOnlyWithinBudget: cookie-less decisions used to lock a
// code with no limit, each costing a store write. Now each is first
// counted against the address budget: with a limit of 3, five posts reach
// the store at most 3 times and cannot lock the code.
func TestLockoutCountsOnlyWithinBudget(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{Limit: 3, Window: 10 * time.Minute}, false))
	g := h.authorize("tv", "")
	writes := h.store.Calls(faulty.OpUpdate)
	for range 5 {
		h.post("/api/verify", url.Values{"user_code": {g.UserCode}, "action": {"deny"}})
	}
	if got := h.store.Calls(faulty.OpUpdate) - writes; got > 3 {
		t.Errorf("%d store writes for 5 limited posts", got)
	}
	rec, err := h.record(g.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Locked || rec.Failures != 3 {
		t.Errorf("failures %d, locked %v; want 3 counted and no lock", rec.Failures, rec.Locked)
	}
}

// TestFailedCountIsNotDropped: when the store fails to count a forged
// decision, the decision is still refused and the fault is logged.
func TestFailedCountIsNotDropped(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	h.store.FailNext(faulty.OpUpdate, errors.New("database on fire"))
	res := h.post("/api/verify", url.Values{"user_code": {g.UserCode}, "action": {"allow"}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("forged allow while the count fails: %d", res.StatusCode)
	}
	if !strings.Contains(h.logs.String(), "could not count a failed confirmation") || !strings.Contains(h.logs.String(), "database on fire") {
		t.Errorf("the fault was not logged:\n%s", h.logs)
	}
}

// TestCallbackStateOfAnotherRecord: a callback carrying record A's cookie
// with record B's state is refused, and neither flow completes.
func TestCallbackStateOfAnotherRecord(t *testing.T) {
	h := newHarness(t)
	a := h.authorize("tv", "")
	b := h.authorize("tv", "")
	qa := h.allow(a.UserCode) // the browser's state cookie now names A
	// B's authorization, begun in another browser.
	other := *h
	other.browser = &http.Client{Jar: newJar(), CheckRedirect: h.browser.CheckRedirect}
	qb := other.allow(b.UserCode)
	code := "code-b"
	h.provider.issue(code, qb.Get("code_challenge"))
	res := h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {qb.Get("state")}}.Encode(), nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("A's cookie with B's state: %d %s", res.StatusCode, res.body)
	}
	_ = qa
	// Refused on the cookie alone, before the store: A's record is not
	// charged a failure for a state that is not even its browser's.
	if rec, err := h.record(a.UserCode); err != nil || rec.Failures != 0 {
		t.Errorf("record A after a foreign state: %v, failures %d", err, rec.Failures)
	}
	for _, g := range []grant{a, b} {
		wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
	}
	if n := h.provider.exchangeCount(); n != 0 {
		t.Errorf("%d exchanges at the provider", n)
	}
}

// TestCallbackAtAnotherProvidersPath: the answer for a record whose client
// signs in at Strava must arrive at Strava's own callback; arriving at the
// default provider's ends the flow without an exchange (mix-up defence).
func TestCallbackAtAnotherProvidersPath(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("bike", "")
	q := h.allow(g.UserCode)
	h.bike.issue("code-bike", q.Get("code_challenge"))
	res := h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {"code-bike"}, "state": {q.Get("state")}}.Encode(), nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(res.body), "different provider") {
		t.Fatalf("bike's answer at the default callback: %d %s", res.StatusCode, res.body)
	}
	if h.bike.exchangeCount()+h.provider.exchangeCount() != 0 {
		t.Error("the code was exchanged")
	}
	m := wantOAuthError(t, h.poll("bike", g.DeviceCode), http.StatusBadRequest, "access_denied")
	if !strings.Contains(m["error_description"].(string), "another provider") {
		t.Errorf("device told %q", m["error_description"])
	}
	// At its own path the same flow works.
	g = h.authorize("bike", "")
	if res := h.approve(g.UserCode); res.StatusCode != http.StatusOK {
		t.Errorf("bike at /api/callback/strava: %d %s", res.StatusCode, res.body)
	}
}

// TestSpoofedForwardedForPrefixes: behind a trusted proxy that appends the
// client's address, a client that prepends a fresh fake address to
// X-Forwarded-For with every request is still one address to the limit.
func TestSpoofedForwardedForPrefixes(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{Limit: 3, Window: 10 * time.Minute}, true))
	limited := 0
	for i := range 10 {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/verify", strings.NewReader(url.Values{"user_code": {guessCode(i + 1)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// What the client sent, then what the proxy appended.
		req.Header.Set("X-Forwarded-For", "192.0.2."+strconv.Itoa(i+1)+", 198.51.100.77:51234")
		if res := h.do(req, nil); res.StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 7 {
		t.Errorf("%d of 10 requests limited with rotating spoofed prefixes, want 7", limited)
	}
}

// TestHealthShowsTheCountedAddress: /api/health says which address the
// limits count the caller under, so the deployment check can prove from
// outside that a spoofed X-Forwarded-For prefix changes nothing.
func TestHealthShowsTheCountedAddress(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{}, trusted))
		get := func(xff string) string {
			req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/health", nil)
			if xff != "" {
				req.Header.Set("X-Forwarded-For", xff)
			}
			return h.do(req, nil).json(t)["client"].(string)
		}
		plain, spoofed := get("198.51.100.7:4000"), get("192.0.2.99, 198.51.100.7:4000")
		want := "127.0.0.1"
		if trusted {
			want = "198.51.100.7"
		}
		if plain != want || spoofed != want {
			t.Errorf("trusted=%v: client %q and %q with a spoofed prefix, want %q", trusted, plain, spoofed, want)
		}
	}
}
