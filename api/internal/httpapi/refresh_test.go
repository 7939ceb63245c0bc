package httpapi_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// refreshForm is a refresh request of clientID with rt, changed by mod.
func refreshForm(clientID, rt string, mod ...func(url.Values)) url.Values {
	return withForm(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}, mod)
}

func (h *harness) refresh(clientID, rt string, mod ...func(url.Values)) *response {
	h.t.Helper()
	return h.post("/api/token", refreshForm(clientID, rt, mod...))
}

// withForm is form after each of mod has changed it.
func withForm(form url.Values, mod []func(url.Values)) url.Values {
	for _, m := range mod {
		m(form)
	}
	return form
}

// TestRefreshBoundToClient: a refresh token works through devicegate only
// for the client it was delivered to. Another public client of the same
// provider presenting it gets invalid_grant, and the provider is never
// asked; so does any client with a token devicegate never issued.
func TestRefreshBoundToClient(t *testing.T) {
	h := newHarness(t)
	a := h.signIn("tv")["refresh_token"].(string)
	conf := h.signIn("console")["refresh_token"].(string)
	before := h.provider.exchangeCount()

	for _, tc := range []struct{ name, client, rt string }{
		{"another public client", "radio", a},
		{"a public client with a confidential client's token", "tv", conf},
		{"a token devicegate never issued", "tv", "RT-forged"},
	} {
		res := h.refresh(tc.client, tc.rt)
		m := wantOAuthError(t, res, http.StatusBadRequest, "invalid_grant")
		if !strings.Contains(m["error_description"].(string), "sign in again") {
			t.Errorf("%s: description %q", tc.name, m["error_description"])
		}
	}
	if n := h.provider.exchangeCount() - before; n != 0 {
		t.Errorf("%d refused refreshes reached the provider", n)
	}
	// The confidential client's token needs its secret too.
	wantOAuthError(t, h.refresh("console", conf), http.StatusUnauthorized, "invalid_client")
	if res := h.refresh("console", conf, func(f url.Values) { f.Set("client_secret", "s3cret") }); res.StatusCode != http.StatusOK {
		t.Errorf("console's own refresh: %d %s", res.StatusCode, res.body)
	}
	// The owner refreshes, again and again while the provider does not
	// rotate: the binding stays.
	for i := range 2 {
		res := h.refresh("tv", a)
		if res.StatusCode != http.StatusOK || res.json(t)["access_token"] != "AT2-"+a[3:] {
			t.Fatalf("owner's refresh %d: %d %s", i+1, res.StatusCode, res.body)
		}
	}
	h.assertLogsClean(a, conf)
}

// TestRefreshRotationMovesBinding: when the provider rotates the refresh
// token, the binding moves to the new one: the new one works, the old one
// is refused without reaching the provider.
func TestRefreshRotationMovesBinding(t *testing.T) {
	for name, backend := range storeBackends() {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, backend(t))
			old := h.signIn("tv")["refresh_token"].(string)
			h.provider.setMode("rotate")
			res := h.refresh("tv", old)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("refresh: %d %s", res.StatusCode, res.body)
			}
			next := res.json(t)["refresh_token"].(string)
			if next == old {
				t.Fatal("the provider did not rotate")
			}
			before := h.provider.exchangeCount()
			wantOAuthError(t, h.refresh("tv", old), http.StatusBadRequest, "invalid_grant")
			if h.provider.exchangeCount() != before {
				t.Error("the rotated-out token reached the provider")
			}
			if res := h.refresh("tv", next); res.StatusCode != http.StatusOK {
				t.Errorf("the new token: %d %s", res.StatusCode, res.body)
			}
		})
	}
}

// TestJunkRefreshesLimited: refreshes are limited per address before any
// binding is read: of 120 junk refreshes from one address under a limit
// of 30, 30 are answered invalid_grant (none reaching the provider) and
// 90 get 429 slow_down with Retry-After. A second address still gets its
// own allowance, until the per-client limit stops all addresses together.
func TestJunkRefreshesLimited(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{}, true),
		withRefreshLimits(ratelimit.Rule{Limit: 30, Window: 10 * time.Minute}, ratelimit.Rule{Limit: 45, Window: 10 * time.Minute}))
	reads := h.store.Calls(faulty.OpGetBinding)
	refused, limited := countLimited(t, 120, http.StatusBadRequest, "invalid_grant", func(i int) *response {
		return h.post("/api/token", refreshForm("tv", "junk-"+guessCode(i)), fromIP("203.0.113.7:5555"))
	})
	if refused != 30 || limited != 90 {
		t.Errorf("%d refused and %d limited, want 30 and 90", refused, limited)
	}
	if n := h.store.Calls(faulty.OpGetBinding) - reads; n != 30 {
		t.Errorf("%d binding reads for 120 junk refreshes, want 30", n)
	}
	if n := h.provider.exchangeCount(); n != 0 {
		t.Errorf("%d junk refreshes reached the provider", n)
	}
	// Another address: its own 30 would be allowed, but the client's 45
	// in all end it after 15.
	got, _ := countLimited(t, 30, http.StatusBadRequest, "invalid_grant", func(int) *response {
		return h.post("/api/token", refreshForm("tv", "junk"), fromIP("198.51.100.9:5555"))
	})
	if got != 15 {
		t.Errorf("the second address got %d refreshes through, want 15 (the client's limit)", got)
	}
}

// TestProviderWidensScopes: tokens holding a scope the client may not
// have are refused — at the callback the flow is denied and nothing is
// delivered; on refresh the answer is invalid_grant and the binding goes.
func TestProviderWidensScopes(t *testing.T) {
	h := newHarness(t)
	rt := h.signIn("tv")["refresh_token"].(string)

	h.provider.setMode("widen")
	m := wantOAuthError(t, h.refresh("tv", rt), http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(m["error_description"].(string), `"admin"`) {
		t.Errorf("refresh description %q", m["error_description"])
	}
	h.provider.setMode("ok")
	wantOAuthError(t, h.refresh("tv", rt), http.StatusBadRequest, "invalid_grant") // binding gone

	h.provider.setMode("widen")
	g := h.authorize("tv", "")
	if res := h.approve(g.UserCode); res.StatusCode != http.StatusBadGateway || !strings.Contains(string(res.body), "more access") {
		t.Errorf("callback with widened scopes: %d", res.StatusCode)
	}
	m = wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
	if !strings.Contains(m["error_description"].(string), "admin") {
		t.Errorf("device told %q", m["error_description"])
	}
	// A client with no allowed list takes what the provider grants.
	if tok := h.signIn("console"); tok["scope"] != "streaming admin" {
		t.Errorf("console's scope %v", tok["scope"])
	}
}

// TestBindingFailureEndsTheFlow: when the binding cannot be stored, the
// tokens are not delivered half-usable: the flow is denied, saying so,
// and the fault is logged.
func TestBindingFailureEndsTheFlow(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	h.store.FailNext(faulty.OpPutBinding, errors.New("binding store down"))
	if res := h.approve(g.UserCode); res.StatusCode != http.StatusBadGateway {
		t.Errorf("callback: %d", res.StatusCode)
	}
	m := wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
	if !strings.Contains(m["error_description"].(string), "start again") {
		t.Errorf("device told %q", m["error_description"])
	}
	if !strings.Contains(h.logs.String(), "binding store down") {
		t.Error("the fault is not in the log")
	}
}

// TestCosmosCostPerRefresh measures what one refresh costs on Cosmos DB:
// point operations only, never a query. Without rotation: the rate counts
// (one patch for the address and its /24 together — an IPv6 address has
// three networks, /64 and /56 in one patch and /48 in another — and one
// for the client) and one binding read; with rotation, the moved binding
// adds an upsert and a delete.
func TestCosmosCostPerRefresh(t *testing.T) {
	c := storetest.NewClock()
	st := openCosmos(t, c)
	h := newHarness(t, withBackend(st, c), withRefreshLimits(ratelimit.Rule{Limit: 30, Window: 10 * time.Minute}, ratelimit.Rule{Limit: 600, Window: 10 * time.Minute}))
	rt := h.signIn("tv")["refresh_token"].(string)
	h.refresh("tv", rt) // the first refresh of a window creates the counters
	for _, mode := range []string{"ok", "rotate"} {
		h.provider.setMode(mode)
		st.ResetStats()
		res := h.refresh("tv", rt)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s refresh: %d %s", mode, res.StatusCode, res.body)
		}
		s := st.Stats()
		t.Logf("Cosmos cost of one refresh (%s): %s", mode, costLine(s))
		wantUpserts, wantDeletes := int64(0), int64(0)
		if mode == "rotate" {
			wantUpserts, wantDeletes = 1, 1
		}
		if s.Queries != 0 || s.PointReads != 1 || s.Creates != 0 || s.Replaces != 0 || s.Patches != 2 || s.Upserts != wantUpserts || s.Deletes != wantDeletes {
			t.Errorf("%s refresh cost %+v", mode, s)
		}
	}
}
