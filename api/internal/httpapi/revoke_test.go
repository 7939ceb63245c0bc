package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
)

// revokeForm is a revocation request of clientID for tok, changed by mod.
func revokeForm(clientID, tok string, mod ...func(url.Values)) url.Values {
	return withForm(url.Values{"client_id": {clientID}, "token": {tok}}, mod)
}

func (h *harness) revoke(clientID, tok string, mod ...func(url.Values)) *response {
	h.t.Helper()
	return h.post("/api/revoke", revokeForm(clientID, tok, mod...))
}

// TestRevokeEndsRefresh (RFC 7009): a device revokes its refresh token;
// the answer is 200, the provider's revocation endpoint revoked it too
// with devicegate's credentials, and the next refresh is invalid_grant
// without a provider call — on every store backend. The token never
// reaches the log.
func TestRevokeEndsRefresh(t *testing.T) {
	for name, backend := range storeBackends() {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, backend(t))
			rt := h.signIn("tv")["refresh_token"].(string)
			other := h.signIn("tv")["refresh_token"].(string)
			res := h.revoke("tv", rt, func(f url.Values) { f.Set("token_type_hint", "refresh_token") })
			if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("revoke: %d %s", res.StatusCode, res.body)
			}
			if !h.provider.isRevoked(rt) {
				t.Error("the token was not revoked at the provider")
			}
			before := h.provider.exchangeCount()
			wantOAuthError(t, h.refresh("tv", rt), http.StatusBadRequest, "invalid_grant")
			if h.provider.exchangeCount() != before {
				t.Error("the revoked token's refresh reached the provider")
			}
			// The same device's other sign-in is untouched.
			if res := h.refresh("tv", other); res.StatusCode != http.StatusOK {
				t.Errorf("the other token after revoking one: %d %s", res.StatusCode, res.body)
			}
			// Revoking again: nothing to do, still 200, no provider call.
			if res := h.revoke("tv", rt); res.StatusCode != http.StatusOK {
				t.Errorf("second revoke: %d %s", res.StatusCode, res.body)
			}
			if n := h.provider.revocations(); n != 1 {
				t.Errorf("%d revocations at the provider, want 1", n)
			}
			h.assertLogsClean(rt, other)
		})
	}
}

// TestRevokeOtherClientsTokenIsNoOp: revoking a token bound to another
// client (or another provider) answers 200 like any revocation, and
// changes nothing: the owner keeps refreshing, the provider is not asked.
// Unknown tokens get the same 200 (RFC 7009 §2.2).
func TestRevokeOtherClientsTokenIsNoOp(t *testing.T) {
	h := newHarness(t)
	rt := h.signIn("tv")["refresh_token"].(string)
	for _, tc := range []struct{ name, client string }{
		{"another public client of the same provider", "radio"},
		{"a client of another provider", "bike"},
	} {
		if res := h.revoke(tc.client, rt); res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", tc.name, res.StatusCode, res.body)
		}
	}
	if res := h.revoke("console", rt, func(f url.Values) { f.Set("client_secret", "s3cret") }); res.StatusCode != http.StatusOK {
		t.Errorf("a confidential client: %d %s", res.StatusCode, res.body)
	}
	if res := h.revoke("tv", "RT-never-issued"); res.StatusCode != http.StatusOK {
		t.Errorf("an unknown token: %d %s", res.StatusCode, res.body)
	}
	if n := h.provider.revocations(); n != 0 {
		t.Errorf("%d revocations reached the provider", n)
	}
	if res := h.refresh("tv", rt); res.StatusCode != http.StatusOK {
		t.Errorf("the owner's refresh after others tried to revoke: %d %s", res.StatusCode, res.body)
	}
}

// TestRevokeAuthenticatesFirst: the client authenticates as at the token
// endpoint before anything is revoked: a confidential client without or
// with a wrong secret gets invalid_client and its token stays good.
func TestRevokeAuthenticatesFirst(t *testing.T) {
	h := newHarness(t)
	rt := h.signIn("console")["refresh_token"].(string)
	wantOAuthError(t, h.revoke("console", rt), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, h.revoke("console", rt, func(f url.Values) { f.Set("client_secret", "wrong") }), http.StatusUnauthorized, "invalid_client")
	res := h.post("/api/revoke", url.Values{"token": {rt}}, func(r *http.Request) { r.SetBasicAuth("console", "wrong") })
	wantOAuthError(t, res, http.StatusUnauthorized, "invalid_client")
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Error("a refused Basic authentication without WWW-Authenticate")
	}
	if n := h.provider.revocations(); n != 0 {
		t.Errorf("%d revocations reached the provider", n)
	}
	if res := h.refresh("console", rt, func(f url.Values) { f.Set("client_secret", "s3cret") }); res.StatusCode != http.StatusOK {
		t.Fatalf("refresh after refused revocations: %d %s", res.StatusCode, res.body)
	}
	res = h.post("/api/revoke", url.Values{"token": {rt}}, func(r *http.Request) { r.SetBasicAuth("console", "s3cret") })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("authenticated revoke: %d %s", res.StatusCode, res.body)
	}
	wantOAuthError(t, h.refresh("console", rt, func(f url.Values) { f.Set("client_secret", "s3cret") }), http.StatusBadRequest, "invalid_grant")
}

// TestRevokeRequests: the answers RFC 7009 gives for malformed requests
// and access tokens.
func TestRevokeRequests(t *testing.T) {
	h := newHarness(t)
	rt := h.signIn("tv")
	wantOAuthError(t, h.revoke("tv", ""), http.StatusBadRequest, "invalid_request")
	wantOAuthError(t, h.post("/api/revoke", url.Values{"token": {"x"}}), http.StatusBadRequest, "invalid_request") // no client_id
	m := wantOAuthError(t, h.revoke("tv", rt["access_token"].(string), func(f url.Values) { f.Set("token_type_hint", "access_token") }),
		http.StatusBadRequest, "unsupported_token_type")
	if m["error_description"] == "" {
		t.Error("unsupported_token_type without a description")
	}
	// An unknown hint is ignored (§2.1): the token is a refresh token.
	if res := h.revoke("tv", rt["refresh_token"].(string), func(f url.Values) { f.Set("token_type_hint", "id_token") }); res.StatusCode != http.StatusOK {
		t.Fatalf("unknown hint: %d %s", res.StatusCode, res.body)
	}
	wantOAuthError(t, h.refresh("tv", rt["refresh_token"].(string)), http.StatusBadRequest, "invalid_grant")
	if res := h.browse(http.MethodGet, "/api/revoke", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/revoke: %d", res.StatusCode)
	}
}

// TestRevokeRateLimited: revocations share the refresh limits and their
// counts, before any binding is read: with 30 per address, 20 refreshes
// leave 10 revocations, the rest are 429 slow_down and read nothing.
func TestRevokeRateLimited(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{}, true),
		withRefreshLimits(ratelimit.Rule{Limit: 30, Window: 10 * time.Minute}, ratelimit.Rule{Limit: 1000, Window: 10 * time.Minute}))
	from := fromIP("203.0.113.7:5555")
	for i := range 20 {
		h.post("/api/token", refreshForm("tv", "junk-"+guessCode(i)), from)
	}
	reads := h.store.Calls(faulty.OpGetBinding)
	ok, limited := countLimited(t, 30, http.StatusOK, "", func(i int) *response {
		return h.post("/api/revoke", revokeForm("tv", "junk-"+guessCode(100+i)), from)
	})
	if ok != 10 || limited != 20 {
		t.Errorf("%d answered and %d limited, want 10 and 20", ok, limited)
	}
	if n := h.store.Calls(faulty.OpGetBinding) - reads; n != 10 {
		t.Errorf("%d binding reads for 30 revocations, want 10", n)
	}
}

// TestRevokePerClientLimit: the per-client refresh limit holds for
// revocations from many addresses.
func TestRevokePerClientLimit(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{}, true),
		withRefreshLimits(ratelimit.Rule{Limit: 1000, Window: 10 * time.Minute}, ratelimit.Rule{Limit: 5, Window: 10 * time.Minute}))
	_, limited := countLimited(t, 10, http.StatusOK, "", func(i int) *response {
		return h.post("/api/revoke", revokeForm("tv", "junk"), fromIP("198.51.100."+string(rune('1'+i%9))+":1"))
	})
	if limited != 5 {
		t.Errorf("%d of 10 limited by the per-client rule of 5, want 5", limited)
	}
}

// TestRevokePassthrough: a passthrough device revokes with the provider's
// secret, which the provider's revocation endpoint checks: a wrong one is
// invalid_client and revokes nothing; the right one ends the token both
// at the provider and through devicegate.
func TestRevokePassthrough(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("kiosk", "")
	if res := h.approve(g.UserCode); res.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", res.StatusCode, res.body)
	}
	tok := pollWith(h, g.DeviceCode)
	if tok.StatusCode != http.StatusOK {
		t.Fatalf("poll: %d %s", tok.StatusCode, tok.body)
	}
	rt := tok.json(t)["refresh_token"].(string)
	wantOAuthError(t, h.revoke("kiosk", rt), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, h.revoke("kiosk", rt, func(f url.Values) { f.Set("client_secret", "wrong") }), http.StatusUnauthorized, "invalid_client")
	// The provider's refusal counts as a failed client authentication, as
	// at the token endpoint (its budget stops secret guessing here too).
	if n := strings.Count(h.logs.String(), "client authentication failed"); n != 1 {
		t.Errorf("%d failed client authentications logged for the refused secret, want 1", n)
	}
	refresh := func() *response {
		return h.refresh("kiosk", rt, func(f url.Values) { f.Set("client_secret", "up-secret") })
	}
	if res := refresh(); res.StatusCode != http.StatusOK || h.provider.isRevoked(rt) {
		t.Fatalf("refresh after refused revocations: %d %s", res.StatusCode, res.body)
	}
	if res := h.revoke("kiosk", rt, func(f url.Values) { f.Set("client_secret", "up-secret") }); res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.StatusCode, res.body)
	}
	if !h.provider.isRevoked(rt) {
		t.Error("not revoked at the provider")
	}
	before := h.provider.exchangeCount()
	wantOAuthError(t, refresh(), http.StatusBadRequest, "invalid_grant")
	if h.provider.exchangeCount() != before {
		t.Error("the revoked token's refresh reached the provider")
	}
}

// TestRevokeSecretGuessingLimited: the revocation endpoint is no way
// around the client-secret budget. Wrong secrets of a confidential client
// at /api/revoke count against the same per-address failure budget as at
// the token endpoint; past it, even the right secret is 429 slow_down from
// that address, at either endpoint, and the token stays good.
func TestRevokeSecretGuessingLimited(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{}, ratelimit.Rule{}, true), withFailureLimits(tenMin(3), ratelimit.Rule{}, ratelimit.Rule{}, ratelimit.Rule{}))
	rt := h.signIn("console")["refresh_token"].(string)
	revoke := func(secret string) *response {
		return h.post("/api/revoke", url.Values{"client_id": {"console"}, "client_secret": {secret}, "token": {rt}}, fromIP("203.0.113.60"))
	}
	for i := range 3 {
		res := revoke("guess-" + guessCode(i))
		if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("guess %d: %d %s", i, res.StatusCode, res.body)
		}
	}
	wantOAuthError(t, revoke("s3cret"), http.StatusTooManyRequests, "slow_down")
	res := h.post("/api/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"console"}, "client_secret": {"s3cret"}, "refresh_token": {rt}}, fromIP("203.0.113.60"))
	wantOAuthError(t, res, http.StatusTooManyRequests, "slow_down")
	res = h.post("/api/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"console"}, "client_secret": {"s3cret"}, "refresh_token": {rt}}, fromIP("198.51.100.60"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the owner's refresh from another address: %d %s", res.StatusCode, res.body)
	}
	if strings.Contains(h.logs.String(), "guess-") {
		t.Error("a guessed secret reached the log")
	}
}
