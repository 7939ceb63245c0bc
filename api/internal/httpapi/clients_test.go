package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestEachClientItsProvider: two device clients in one deployment, each
// sent to its own provider, with that provider's name on the confirmation
// screen, its scope separator, its token endpoint and its credentials.
func TestEachClientItsProvider(t *testing.T) {
	h := newHarness(t)

	bike := h.authorize("bike", "")
	res := h.browse(http.MethodGet, "/api/verify?user_code="+url.QueryEscape(bike.UserCode), nil)
	for _, want := range []string{"Bike computer", "Strava", "activity:read"} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("bike's confirmation page lacks %q", want)
		}
	}
	if strings.Contains(string(res.body), "Acme Music") {
		t.Error("bike's confirmation page names the default provider")
	}
	// Every provider a client may be sent to, and only those, may be the
	// target of the confirmation form's redirect.
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' https://accounts.acme.test https://www.strava.com;") {
		t.Errorf("CSP %q", csp)
	}

	q := h.allow(bike.UserCode)
	if q.Get("client_id") != "bike-up" || q.Get("scope") != "read,activity:read" || q.Get("code_challenge") != "" {
		t.Errorf("bike's authorize request %v: want Strava's client, comma-separated scopes, no PKCE", q)
	}
	if res := h.approve(bike.UserCode); res.StatusCode != http.StatusOK {
		t.Fatalf("bike callback: %d %s", res.StatusCode, res.body)
	}
	if h.bike.exchanges != 1 || h.provider.exchanges != 0 {
		t.Errorf("exchanges: bike's provider %d, default %d", h.bike.exchanges, h.provider.exchanges)
	}
	tok := h.poll("bike", bike.DeviceCode)
	if tok.StatusCode != http.StatusOK || !strings.HasPrefix(tok.json(t)["access_token"].(string), "AT-code-") {
		t.Fatalf("bike poll: %d %s", tok.StatusCode, tok.body)
	}

	// The TV, in the same deployment, still goes to the default provider.
	tv := h.authorize("tv", "")
	if q := h.allow(tv.UserCode); q.Get("client_id") != "up-client" {
		t.Errorf("tv sent to client %q", q.Get("client_id"))
	}

	// A refresh goes to the client's own provider, with its credentials.
	bikeRT := tok.json(t)["refresh_token"].(string)
	ref := h.post("/api/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"bike"}, "refresh_token": {bikeRT}})
	if ref.StatusCode != http.StatusOK || ref.json(t)["access_token"] != "AT2-"+bikeRT[3:] || h.bike.exchanges != 2 || h.provider.exchanges != 0 {
		t.Fatalf("bike refresh: %d %s (bike %d, default %d)", ref.StatusCode, ref.body, h.bike.exchanges, h.provider.exchanges)
	}
}

func pollWith(h *harness, deviceCode string, mod ...func(url.Values)) *response {
	h.t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"kiosk"}, "device_code": {deviceCode}, "client_secret": {"up-secret"}}
	for _, m := range mod {
		m(form)
	}
	return h.post("/api/token", form)
}

func secret(s string) func(url.Values) {
	return func(f url.Values) {
		if s == "" {
			f.Del("client_secret")
		} else {
			f.Set("client_secret", s)
		}
	}
}

// TestPassthroughFlow: the device holds the provider's secret; devicegate
// keeps the code, not tokens, and exchanges it with the device's secret
// when the device polls.
func TestPassthroughFlow(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("kiosk", "") // a passthrough device needs no secret to start
	wantOAuthError(t, pollWith(h, g.DeviceCode), http.StatusBadRequest, "authorization_pending")

	if res := h.approve(g.UserCode); res.StatusCode != http.StatusOK || !strings.Contains(string(res.body), "all set") ||
		!strings.Contains(string(res.body), "it now finishes signing in with") {
		t.Fatalf("callback: %d %s", res.StatusCode, res.body)
	}
	if h.provider.exchanges != 0 {
		t.Fatalf("devicegate exchanged the code itself (%d exchanges)", h.provider.exchanges)
	}

	// Without a secret, or with one the provider refuses: invalid_client,
	// and the sign-in survives for a poll with the right one.
	h.clock.Advance(5 * time.Second)
	m := wantOAuthError(t, pollWith(h, g.DeviceCode, secret("")), http.StatusUnauthorized, "invalid_client")
	if !strings.Contains(m["error_description"].(string), "passthrough") {
		t.Errorf("description %v", m["error_description"])
	}
	h.clock.Advance(5 * time.Second)
	wantOAuthError(t, pollWith(h, g.DeviceCode, secret("wrong")), http.StatusUnauthorized, "invalid_client")
	if h.provider.exchanges == 0 { // two with the generic preset: x/oauth2 tries Basic, then post
		t.Error("the wrong secret never reached the provider")
	}
	// With Basic, the refusal carries a challenge.
	h.clock.Advance(5 * time.Second)
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {g.DeviceCode}}
	res := h.post("/api/token", form, func(r *http.Request) { r.SetBasicAuth("kiosk", "wrong") })
	wantOAuthError(t, res, http.StatusUnauthorized, "invalid_client")
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Error("no WWW-Authenticate after a refused Basic secret")
	}

	h.clock.Advance(5 * time.Second)
	res = h.post("/api/token", form, func(r *http.Request) { r.SetBasicAuth("kiosk", "up-secret") })
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("poll with the right secret: %d %s", res.StatusCode, res.body)
	}
	tok := res.json(t)
	if !strings.HasPrefix(tok["access_token"].(string), "AT-code-") || !strings.HasPrefix(tok["refresh_token"].(string), "RT-code-") || tok["expires_in"] != float64(3600) {
		t.Errorf("tokens %v", tok)
	}
	h.clock.Advance(5 * time.Second)
	wantOAuthError(t, pollWith(h, g.DeviceCode), http.StatusBadRequest, "invalid_grant")

	// Refresh with the device's secret; without it, or with a wrong one,
	// invalid_client.
	ref := func(sec string) *response {
		f := url.Values{"grant_type": {"refresh_token"}, "client_id": {"kiosk"}, "refresh_token": {tok["refresh_token"].(string)}}
		if sec != "" {
			f.Set("client_secret", sec)
		}
		return h.post("/api/token", f)
	}
	if r := ref("up-secret"); r.StatusCode != http.StatusOK || r.json(t)["access_token"] != "AT2-"+tok["refresh_token"].(string)[3:] {
		t.Errorf("passthrough refresh: %d %s", r.StatusCode, r.body)
	}
	wantOAuthError(t, ref(""), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, ref("wrong"), http.StatusUnauthorized, "invalid_client")
	// The provider's secret the device presented, its codes and tokens
	// never reach the log, whatever the outcome.
	h.assertLogsClean("up-secret", "wrong", g.DeviceCode, g.UserCode, tok["access_token"].(string), tok["refresh_token"].(string))
}

// TestPassthroughProviderTrouble: a provider out of reach keeps the device
// waiting and is retried; a provider refusing the code ends the flow.
func TestPassthroughProviderTrouble(t *testing.T) {
	h := newHarness(t, withUpstreamTimeout(hangTimeout))
	g := h.authorize("kiosk", "")
	h.approve(g.UserCode)

	for _, mode := range []string{"500", "hang"} {
		h.provider.setMode(mode)
		h.clock.Advance(5 * time.Second)
		m := wantOAuthError(t, pollWith(h, g.DeviceCode), http.StatusBadRequest, "authorization_pending")
		if !strings.Contains(m["error_description"].(string), "could not be reached") {
			t.Errorf("%s: description %v", mode, m["error_description"])
		}
	}
	h.provider.setMode("ok")
	h.clock.Advance(5 * time.Second)
	if res := pollWith(h, g.DeviceCode); res.StatusCode != http.StatusOK {
		t.Fatalf("after the provider recovered: %d %s", res.StatusCode, res.body)
	}

	g = h.authorize("kiosk", "")
	h.approve(g.UserCode)
	h.provider.setMode("400") // invalid_grant: the code is dead
	h.clock.Advance(5 * time.Second)
	m := wantOAuthError(t, pollWith(h, g.DeviceCode), http.StatusBadRequest, "access_denied")
	if !strings.Contains(m["error_description"].(string), "Acme Music rejected the token exchange (invalid_grant)") {
		t.Errorf("description %v", m["error_description"])
	}
	h.provider.setMode("ok")
	h.clock.Advance(5 * time.Second)
	wantOAuthError(t, pollWith(h, g.DeviceCode), http.StatusBadRequest, "access_denied")
}

// TestPassthroughNeedsItsMode: a proxy-mode client's code is exchanged at
// the callback with devicegate's secret, and its poll exchanges nothing.
func TestPassthroughNeedsItsMode(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	h.approve(g.UserCode)
	if h.provider.exchanges != 1 {
		t.Fatalf("proxy client's code not exchanged at the callback (%d)", h.provider.exchanges)
	}
	// A public proxy client's tokens come from the record.
	h.clock.Advance(5 * time.Second)
	if res := h.poll("tv", g.DeviceCode); res.StatusCode != http.StatusOK || h.provider.exchanges != 1 {
		t.Fatalf("proxy poll: %d %s (%d exchanges)", res.StatusCode, res.body, h.provider.exchanges)
	}
}

// TestLockoutAfterFailedConfirmations: forged decisions (no or a wrong
// CSRF token) and forged callbacks against one code lock it after five;
// the person sees why, the device gets access_denied, and the real
// browser's Allow no longer works.
func TestLockoutAfterFailedConfirmations(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	csrf := h.confirm(g.UserCode) // the real person's page

	attacker := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	forge := func(form url.Values) *response {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/verify", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return h.do(req, attacker)
	}
	for i := range 4 {
		res := forge(url.Values{"user_code": {g.UserCode}, "action": {"allow"}, "csrf": {strings.Repeat("A", 43)}})
		if res.StatusCode != http.StatusForbidden || strings.Contains(string(res.body), "locked") {
			t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
		}
	}
	// A forged callback naming the record counts as well: take the record
	// id from a real Allow, then send a wrong state.
	q := h.allow(g.UserCode)
	var recordID string
	u, _ := url.Parse(h.srv.URL)
	for _, c := range h.browser.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "state") {
			recordID, _, _ = strings.Cut(c.Value, ".")
		}
	}
	if recordID == "" || q.Get("state") == "" {
		t.Fatal("no state cookie after Allow")
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/callback?code=x&state=forged", nil)
	req.AddCookie(&http.Cookie{Name: "devicegate-state", Value: recordID + ".forged"}) // plain http: no __Host- prefix
	res := h.do(req, attacker)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(res.body), "locked after too many failed attempts") {
		t.Fatalf("fifth failure: %d %s", res.StatusCode, res.body)
	}

	// The real person's pending authorization cannot finish any more.
	res = h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {"code-x"}, "state": {q.Get("state")}}.Encode(), nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(res.body), "locked") {
		t.Errorf("the real callback after the lock: %d", res.StatusCode)
	}
	res = h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"allow"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(res.body), "locked") {
		t.Errorf("Allow after the lock: %d", res.StatusCode)
	}
	m := wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
	if !strings.Contains(m["error_description"].(string), "locked after 5 failed confirmation attempts") {
		t.Errorf("device told %v", m["error_description"])
	}
	if h.provider.exchanges != 0 {
		t.Errorf("%d exchanges for a locked code", h.provider.exchanges)
	}
}

// TestRefreshWithRefusedProxyCredentials: when the provider refuses
// devicegate's own secret (rotated at the provider, not in devicegate),
// the device is told to retry later — not invalid_grant, which would make
// it throw away a refresh token that is still good.
func TestRefreshWithRefusedProxyCredentials(t *testing.T) {
	h := newHarness(t)
	rt := h.signIn("tv")["refresh_token"].(string)
	h.provider.setSecret("rotated")
	res := h.post("/api/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"tv"}, "refresh_token": {rt}})
	m := wantOAuthError(t, res, http.StatusServiceUnavailable, "temporarily_unavailable")
	if res.Header.Get("Retry-After") == "" || !strings.Contains(m["error_description"].(string), "refresh token is kept") {
		t.Errorf("answer %v, Retry-After %q", m, res.Header.Get("Retry-After"))
	}
	if !strings.Contains(h.logs.String(), "refused devicegate's client credentials") {
		t.Error("the operator is not told in the log")
	}
}
