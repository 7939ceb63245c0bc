package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/bolt"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// countLimited sends n requests (send(i) for each i) and counts those
// answered with status — and, when code is set, with that error — and those
// limited: each a 429 slow_down with Retry-After and the no-store headers.
// Any other answer fails the test.
func countLimited(t *testing.T, n, status int, code string, send func(i int) *response) (answered, limited int) {
	t.Helper()
	for i := range n {
		res := send(i)
		switch res.StatusCode {
		case status:
			if code != "" {
				wantOAuthError(t, res, status, code)
			}
			answered++
		case http.StatusTooManyRequests:
			wantOAuthError(t, res, http.StatusTooManyRequests, "slow_down")
			if res.Header.Get("Retry-After") == "" {
				t.Fatalf("request %d: 429 without Retry-After", i)
			}
			limited++
		default:
			t.Fatalf("request %d: %d %s", i, res.StatusCode, res.body)
		}
	}
	return answered, limited
}

func wantOAuthError(t *testing.T, res *response, status int, code string) map[string]any {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.body)
	}
	m := res.json(t)
	if m["error"] != code {
		t.Fatalf("error %v, want %s: %s", m["error"], code, res.body)
	}
	if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("Pragma") != "no-cache" {
		t.Errorf("error answer lacks no-store headers: %v", res.Header)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return m
}

func TestFullFlow(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "streaming user-read-email")
	if g.VerificationURI != h.srv.URL+"/device" ||
		g.VerificationURIComplete != h.srv.URL+"/api/verify?user_code="+url.QueryEscape(g.UserCode) ||
		g.ExpiresIn != 600 || g.Interval != 5 || len(g.UserCode) != 9 || g.UserCode[4] != '-' || len(g.DeviceCode) < 22 {
		t.Fatalf("authorization answer %+v", g)
	}
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")

	// The person types the code in lower case with spaces.
	typed := strings.ToLower(g.UserCode[:4] + " " + g.UserCode[5:])
	res := h.browse(http.MethodGet, "/api/verify?"+url.Values{"user_code": {typed}}.Encode(), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("confirmation: %d %s", res.StatusCode, res.body)
	}
	for _, want := range []string{"Living-room TV", "streaming", "user-read-email", g.UserCode, "Acme Music"} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("confirmation page lacks %q", want)
		}
	}
	csrf := csrfFrom(t, res.body)
	res = h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {typed}, "csrf": {csrf}, "action": {"allow"}})
	if res.StatusCode != http.StatusFound {
		t.Fatalf("allow: %d %s", res.StatusCode, res.body)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	q := loc.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": "up-client", "redirect_uri": h.srv.URL + "/api/callback",
		"scope": "streaming user-read-email", "code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("upstream redirect %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 32 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("weak state or challenge in %v", q)
	}
	stateCookie := cookieNamed(res, "devicegate-state")
	if stateCookie == nil || !stateCookie.HttpOnly || stateCookie.SameSite != http.SameSiteLaxMode || stateCookie.MaxAge <= 600 || stateCookie.MaxAge > 600+3600 {
		// It outlives the code (10 min) by an hour: long enough to tell a
		// person back from the provider too late that their code expired,
		// bounded all the same.
		t.Errorf("state cookie %+v", stateCookie)
	}

	h.provider.issue("the-code", q.Get("code_challenge"))
	res = h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {"the-code"}, "state": {q.Get("state")}}.Encode(), nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(res.body), "all set") {
		t.Fatalf("callback: %d %s", res.StatusCode, res.body)
	}

	res = h.poll("tv", g.DeviceCode)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("poll after approval: %d %s", res.StatusCode, res.body)
	}
	if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("Pragma") != "no-cache" {
		t.Errorf("token answer headers %v", res.Header)
	}
	tok := res.json(t)
	if tok["access_token"] != "AT-the-code" || tok["refresh_token"] != "RT-the-code" || tok["token_type"] != "Bearer" || tok["expires_in"] != 3600.0 || tok["scope"] != "streaming" {
		t.Errorf("tokens %v", tok)
	}
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "invalid_grant")

	// The callback replayed after success exchanges nothing: this browser
	// is told its sign-in already finished, any other browser is refused.
	exchanges := h.provider.exchangeCount()
	replay := "/api/callback?" + url.Values{"code": {"the-code"}, "state": {q.Get("state")}}.Encode()
	res = h.browse(http.MethodGet, replay, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(res.body), "already finished") {
		t.Errorf("replayed callback: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+replay, nil)
	if res := h.do(req, nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback from another browser: %d", res.StatusCode)
	}
	if h.provider.exchangeCount() != exchanges {
		t.Error("a replayed callback reached the provider")
	}

	// Debug logging saw the whole flow and kept every secret out.
	h.assertLogsClean(g.DeviceCode, g.UserCode, strings.ReplaceAll(g.UserCode, "-", ""), typed,
		"AT-the-code", "RT-the-code", "the-code", q.Get("state"), q.Get("code_challenge"), csrf, "up-secret")
}

// assertLogsClean fails if any secret appears in what the server logged.
func (h *harness) assertLogsClean(secrets ...string) {
	h.t.Helper()
	logs := h.logs.String()
	if !strings.Contains(logs, "/api/token") {
		h.t.Fatalf("the log captured nothing useful: %q", logs)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			h.t.Errorf("a secret (%d chars) appears in the logs", len(s))
		}
	}
}

func TestDefaultScopesAndConfidentialClients(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	q := h.allow(g.UserCode)
	if q.Get("scope") != "streaming" {
		t.Errorf("default scope %q", q.Get("scope"))
	}

	// Confidential client: Basic and post both work, both at once do not.
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	res := h.post("/api/authorize", url.Values{}, basic("console", "s3cret"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("basic auth: %d %s", res.StatusCode, res.body)
	}
	dc := res.json(t)["device_code"].(string)
	res = h.post("/api/authorize", url.Values{"client_id": {"console"}, "client_secret": {"s3cret"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("post auth: %d %s", res.StatusCode, res.body)
	}
	// SWA replaces Authorization with its own bearer header: ignored.
	res = h.post("/api/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}, "client_id": {"console"}, "client_secret": {"s3cret"}},
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer swa-internal") })
	wantOAuthError(t, res, http.StatusBadRequest, "authorization_pending")

	res = h.post("/api/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}}, basic("console", "wrong"))
	wantOAuthError(t, res, http.StatusUnauthorized, "invalid_client")
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 after Basic lacks WWW-Authenticate")
	}
	res = h.post("/api/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}, "client_id": {"console"}, "client_secret": {"wrong"}})
	wantOAuthError(t, res, http.StatusUnauthorized, "invalid_client")
	if res.Header.Get("WWW-Authenticate") != "" {
		t.Error("401 after client_secret_post carries WWW-Authenticate")
	}
	res = h.post("/api/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}, "client_id": {"console"}})
	wantOAuthError(t, res, http.StatusUnauthorized, "invalid_client")
	res = h.post("/api/authorize", url.Values{"client_secret": {"s3cret"}}, basic("console", "s3cret"))
	wantOAuthError(t, res, http.StatusBadRequest, "invalid_request")
	// A device code belongs to the client it was issued to.
	wantOAuthError(t, h.poll("tv", dc), http.StatusBadRequest, "invalid_grant")
}

func TestDenyOnOurPage(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	csrf := h.confirm(g.UserCode)
	res := h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"deny"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(res.body)), "denied") {
		t.Fatalf("deny: %d %s", res.StatusCode, res.body)
	}
	m := wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
	if !strings.Contains(m["error_description"].(string), "denied") {
		t.Errorf("description %q", m["error_description"])
	}
	// The code cannot be confirmed again.
	res = h.browse(http.MethodGet, "/api/verify?user_code="+g.UserCode, nil)
	if res.StatusCode != http.StatusConflict {
		t.Errorf("confirm after deny: %d", res.StatusCode)
	}
}

func TestUpstreamDenies(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	q := h.allow(g.UserCode)
	res := h.browse(http.MethodGet, "/api/callback?"+url.Values{"error": {"access_denied"}, "state": {q.Get("state")}}.Encode(), nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(res.body)), "denied") {
		t.Fatalf("callback with error: %d %s", res.StatusCode, res.body)
	}
	m := wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
	if m["error_description"] != "the user denied access at Acme Music" {
		t.Errorf("description %q", m["error_description"])
	}
}

func TestUpstreamFailures(t *testing.T) {
	tests := []struct {
		mode, desc string
	}{
		{"400", "Acme Music rejected the token exchange (invalid_grant)"},
		{"500", "Acme Music could not be reached to complete the token exchange"},
		{"garbage", "Acme Music answered the token exchange with an unusable response"},
		{"notoken", "Acme Music answered the token exchange with an unusable response"},
		{"hang", "Acme Music could not be reached to complete the token exchange"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			// Only the hang case, whose one exchange is the one that
			// hangs, gets a short timeout: the others' answers must arrive
			// in time however loaded the machine is.
			var opts []harnessOpt
			if tc.mode == "hang" {
				opts = append(opts, withUpstreamTimeout(300*time.Millisecond))
			}
			h := newHarness(t, opts...)
			h.provider.setMode(tc.mode)
			g := h.authorize("tv", "")
			res := h.approve(g.UserCode)
			if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(res.body), "Acme Music") {
				t.Errorf("person sees %d %s", res.StatusCode, res.body)
			}
			m := wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
			if m["error_description"] != tc.desc {
				t.Errorf("description %q, want %q", m["error_description"], tc.desc)
			}
		})
	}
}

func TestCallbackStateProblems(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	q := h.allow(g.UserCode)
	state := q.Get("state")
	h.provider.issue("c1", q.Get("code_challenge"))

	// Another browser (no cookie) cannot complete it.
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/callback?code=c1&state="+url.QueryEscape(state), nil)
	res := h.do(req, nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without cookie: %d", res.StatusCode)
	}
	// This browser with a forged state: refused before the store, and it
	// does not spoil the real answer.
	res = h.browse(http.MethodGet, "/api/callback?code=c1&state=forged", nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("mismatched state: %d", res.StatusCode)
	}
	res = h.browse(http.MethodGet, "/api/callback?code=c1&state="+url.QueryEscape(state), nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(res.body), "all set") {
		t.Fatalf("the real callback after a forged one: %d %s", res.StatusCode, res.body)
	}
	// Back to the provider and through it again: the same browser is told
	// its sign-in already finished, before and after the device collects.
	for _, when := range []string{"before the device polls", "after"} {
		h.provider.issue("c-again", q.Get("code_challenge"))
		res = h.browse(http.MethodGet, "/api/callback?code=c-again&state="+url.QueryEscape(state), nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(res.body), "already finished signing in") {
			t.Errorf("callback again %s: %d %s", when, res.StatusCode, res.body)
		}
		if when == "after" {
			break
		}
		if tok := h.poll("tv", g.DeviceCode); tok.StatusCode != http.StatusOK {
			t.Errorf("poll: %d %s", tok.StatusCode, tok.body)
		}
	}

	// Allow again replaces the state: the old one is dead, the new works.
	g2 := h.authorize("tv", "")
	old := h.allow(g2.UserCode)
	q2 := h.allow(g2.UserCode)
	h.provider.issue("c2", q2.Get("code_challenge"))
	if res := h.browse(http.MethodGet, "/api/callback?code=c2&state="+url.QueryEscape(old.Get("state")), nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("the replaced state: %d", res.StatusCode)
	}
	res = h.browse(http.MethodGet, "/api/callback?code=c2&state="+url.QueryEscape(q2.Get("state")), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("fresh callback: %d %s", res.StatusCode, res.body)
	}
	if tok := h.poll("tv", g2.DeviceCode); tok.StatusCode != http.StatusOK {
		t.Errorf("poll: %d %s", tok.StatusCode, tok.body)
	}
}

func TestExpiryAtEveryStep(t *testing.T) {
	h := newHarness(t)
	g1 := h.authorize("tv", "")
	g2 := h.authorize("tv", "")
	csrf := h.confirm(g2.UserCode)
	g3 := h.authorize("tv", "")
	q3 := h.allow(g3.UserCode)
	h.provider.issue("c3", q3.Get("code_challenge"))
	h.clock.Advance(10 * time.Minute)

	if res := h.browse(http.MethodGet, "/api/verify?user_code="+g1.UserCode, nil); res.StatusCode != http.StatusGone || !strings.Contains(strings.ToLower(string(res.body)), "expired") {
		t.Errorf("confirm expired: %d", res.StatusCode)
	}
	if res := h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {g2.UserCode}, "csrf": {csrf}, "action": {"allow"}}); res.StatusCode != http.StatusGone {
		t.Errorf("allow expired: %d", res.StatusCode)
	}
	if res := h.browse(http.MethodGet, "/api/callback?code=c3&state="+url.QueryEscape(q3.Get("state")), nil); res.StatusCode != http.StatusGone {
		t.Errorf("callback expired: %d %s", res.StatusCode, res.body)
	}
	for _, g := range []grant{g1, g2, g3} {
		wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "expired_token")
	}
}

// TestExpiredWhileAtProvider: the code runs out while the person is still
// at the provider. A browser keeps the state cookie for its Max-Age, so
// that must reach past the code's end; then the callback recognises this
// browser's own sign-in and says the code expired, not that the sign-in
// cannot be matched to this browser.
func TestExpiredWhileAtProvider(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	csrf := h.confirm(g.UserCode)
	res := h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"allow"}})
	if res.StatusCode != http.StatusFound {
		t.Fatalf("allow: %d %s", res.StatusCode, res.body)
	}
	var maxAge time.Duration
	if c := cookieNamed(res, "devicegate-state"); c != nil {
		maxAge = time.Duration(c.MaxAge) * time.Second
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	state := loc.Query().Get("state")
	h.provider.issue("c-late", loc.Query().Get("code_challenge"))

	// The person comes back 20 minutes after the code (10 minutes) ran
	// out. The test's cookie jar keeps real time, so what a browser on
	// this clock would still send is decided here from Max-Age.
	late := 30 * time.Minute
	h.clock.Advance(late)
	if maxAge <= late {
		t.Fatalf("the state cookie lives %v from Allow: a browser has dropped it %v later, and the callback cannot tell this browser's expired sign-in from a stranger's", maxAge, late)
	}
	res = h.browse(http.MethodGet, "/api/callback?code=c-late&state="+url.QueryEscape(state), nil)
	if body := string(res.body); res.StatusCode != http.StatusGone || !strings.Contains(body, "ran out while you were signing in") ||
		!strings.Contains(body, "Start again on your device") || strings.Contains(body, "could not match") {
		t.Errorf("callback after the code expired: %d %s", res.StatusCode, body)
	}
	if n := h.provider.exchangeCount(); n != 0 {
		t.Errorf("%d exchanges for an expired code", n)
	}
	// The longer-lived cookie binds nothing new: another browser, or this
	// one with another state, is still refused.
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/callback?code=c-late&state="+url.QueryEscape(state), nil)
	if res := h.do(req, nil); res.StatusCode != http.StatusBadRequest || !strings.Contains(string(res.body), "could not match") {
		t.Errorf("callback from a browser without the cookie: %d", res.StatusCode)
	}
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "expired_token")
}

func TestSlowDownOverHTTP(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
	h.clock.Advance(time.Second)
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "slow_down")
	h.clock.Advance(10 * time.Second)
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
	// The raised interval (10 s) is remembered.
	h.clock.Advance(6 * time.Second)
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "slow_down")
}

func TestConcurrentPollsExactlyOnce(t *testing.T) {
	for name, open := range storeBackends() {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, open(t))
			// Three rounds, so a store whose swap is not atomic is caught
			// however the polls happen to interleave.
			for round := range 3 {
				g := h.authorize("tv", "")
				if res := h.approve(g.UserCode); res.StatusCode != http.StatusOK {
					t.Fatalf("approve: %d", res.StatusCode)
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				counts := map[string]int{}
				for range 50 {
					wg.Go(func() {
						res := h.poll("tv", g.DeviceCode)
						key := "tokens"
						if res.StatusCode != http.StatusOK {
							m := res.json(t)
							key, _ = m["error"].(string)
						}
						mu.Lock()
						counts[key]++
						mu.Unlock()
					})
				}
				wg.Wait()
				if counts["tokens"] != 1 || counts["tokens"]+counts["invalid_grant"]+counts["expired_token"] != 50 {
					t.Errorf("round %d: answers %v, want exactly one delivery and the rest invalid_grant/expired_token", round, counts)
				}
			}
		})
	}
}

func TestStoreFaults(t *testing.T) {
	boom := errors.New("store down")
	tests := []struct {
		name string
		op   faulty.Op
		run  func(h *harness) *response
	}{
		{"authorize", faulty.OpCreate, func(h *harness) *response { return h.post("/api/authorize", url.Values{"client_id": {"tv"}}) }},
		{"poll", faulty.OpUpdate, func(h *harness) *response {
			g := h.authorize("tv", "")
			h.store.FailNext(faulty.OpUpdate, boom)
			return h.poll("tv", g.DeviceCode)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.op == faulty.OpCreate {
				h.store.FailNext(tc.op, boom)
			}
			wantOAuthError(t, tc.run(h), http.StatusServiceUnavailable, "temporarily_unavailable")
		})
	}

	t.Run("page", func(t *testing.T) {
		h := newHarness(t)
		g := h.authorize("tv", "")
		h.store.FailNext(faulty.OpGetByUserCode, boom)
		res := h.browse(http.MethodGet, "/api/verify?user_code="+g.UserCode, nil)
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("page with store down: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		// The record survived: the flow continues once the store is back.
		if res := h.approve(g.UserCode); res.StatusCode != http.StatusOK {
			t.Errorf("approve after the fault: %d", res.StatusCode)
		}
		if res := h.poll("tv", g.DeviceCode); res.StatusCode != http.StatusOK {
			t.Errorf("poll after the fault: %d", res.StatusCode)
		}
	})

	t.Run("health", func(t *testing.T) {
		h := newHarness(t)
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/health", nil)
		if res := h.do(req, nil); res.StatusCode != http.StatusOK {
			t.Errorf("health: %d", res.StatusCode)
		}
		h.store.FailNext(faulty.OpPing, boom)
		res := h.do(req, nil)
		if res.StatusCode != http.StatusServiceUnavailable || res.json(t)["store"] != "unreachable" {
			t.Errorf("health with store down: %d %s", res.StatusCode, res.body)
		}
	})
}

var _ store.Store = (*faulty.Store)(nil)

func TestRateLimits(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{Limit: 2, Window: time.Minute}, ratelimit.Rule{Limit: 3, Window: 10 * time.Minute}, true))
	from := func(ip string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("X-Forwarded-For", ip+":5555") }
	}
	form := url.Values{"client_id": {"tv"}}
	for i := range 2 {
		if res := h.post("/api/authorize", form, from("203.0.113.7")); res.StatusCode != http.StatusOK {
			t.Fatalf("authorize %d: %d", i, res.StatusCode)
		}
	}
	res := h.post("/api/authorize", form, from("203.0.113.7"))
	wantOAuthError(t, res, http.StatusTooManyRequests, "slow_down")
	if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	if res := h.post("/api/authorize", form, from("203.0.113.8")); res.StatusCode != http.StatusOK {
		t.Errorf("another address was limited: %d", res.StatusCode)
	}

	// Code entry: three tries per address, then a friendly page.
	g := h.authorize("tv", "")
	for _, code := range []string{"BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM"} {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/verify", strings.NewReader(url.Values{"user_code": {code}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "198.51.100.1")
		if res := h.do(req, nil); res.StatusCode != http.StatusNotFound {
			t.Fatalf("wrong code: %d", res.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/api/verify?user_code="+g.UserCode, nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	res = h.do(req, nil)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(strings.ToLower(string(res.body)), "too many") {
		t.Errorf("fourth entry: %d %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	h.clock.Advance(10 * time.Minute)
	if res := h.do(req, nil); res.StatusCode == http.StatusTooManyRequests {
		t.Error("still limited in the next window")
	}
}

func TestForwardedForIgnoredWithoutTrustedProxy(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{Limit: 1, Window: time.Minute}, ratelimit.Rule{}, false))
	form := url.Values{"client_id": {"tv"}}
	if res := h.post("/api/authorize", form, func(r *http.Request) { r.Header.Set("X-Forwarded-For", "203.0.113.1") }); res.StatusCode != http.StatusOK {
		t.Fatal(res.StatusCode)
	}
	// A spoofed header does not buy a fresh allowance.
	res := h.post("/api/authorize", form, func(r *http.Request) { r.Header.Set("X-Forwarded-For", "203.0.113.2") })
	wantOAuthError(t, res, http.StatusTooManyRequests, "slow_down")
}

// TestRestartBetweenCallbackAndPoll: the process stops after the person
// approved and before the device polled; a new process on the same bolt
// file hands the tokens over, once.
func TestRestartBetweenCallbackAndPoll(t *testing.T) {
	path := t.TempDir() + "/dg.db"
	c := storetest.NewClock()
	b1, err := bolt.Open(path, bolt.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	h1 := newHarness(t, withBackend(b1, c))
	g := h1.authorize("tv", "")
	if res := h1.approve(g.UserCode); res.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d", res.StatusCode)
	}
	h1.srv.Close()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}

	b2, err := bolt.Open(path, bolt.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	h2 := newHarness(t, withBackend(b2, c))
	res := h2.poll("tv", g.DeviceCode)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.json(t)["access_token"].(string), "AT-code-") {
		t.Fatalf("poll after restart: %d %s", res.StatusCode, res.body)
	}
	wantOAuthError(t, h2.poll("tv", g.DeviceCode), http.StatusBadRequest, "invalid_grant")
}

// TestStoreTimeout: a store that hangs is cut off by the request's
// deadline, answered 503, and the record is intact afterwards.
func TestStoreTimeout(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	h.store.Delay(faulty.OpUpdate, 5*time.Second)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/token", strings.NewReader(url.Values{
		"grant_type": {dcGrant}, "client_id": {"tv"}, "device_code": {g.DeviceCode}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		t.Error("a hanging store answered in time")
	}
	h.store.Reset()
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
}

func TestRefreshThroughDevicegate(t *testing.T) {
	h := newHarness(t, withUpstreamTimeout(hangTimeout))
	g := h.authorize("tv", "")
	h.approve(g.UserCode)
	tok := h.poll("tv", g.DeviceCode).json(t)
	rt := tok["refresh_token"].(string)
	refresh := func(form url.Values) *response {
		form.Set("grant_type", "refresh_token")
		return h.post("/api/token", form)
	}
	res := refresh(url.Values{"client_id": {"tv"}, "refresh_token": {rt}})
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("refresh: %d %s", res.StatusCode, res.body)
	}
	m := res.json(t)
	if m["access_token"] != "AT2-"+strings.TrimPrefix(rt, "RT-") || m["expires_in"] != 1800.0 || m["token_type"] != "Bearer" {
		t.Errorf("refreshed %v", m)
	}
	if _, ok := m["refresh_token"]; ok {
		t.Error("the provider sent no new refresh token, but the answer carries one")
	}
	wantOAuthError(t, refresh(url.Values{"client_id": {"tv"}, "refresh_token": {"revoked"}}), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, refresh(url.Values{"client_id": {"tv"}}), http.StatusBadRequest, "invalid_request")
	wantOAuthError(t, refresh(url.Values{"client_id": {"nobody"}, "refresh_token": {rt}}), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, refresh(url.Values{"client_id": {"tv"}, "refresh_token": {rt}, "scope": {"streaming"}}), http.StatusBadRequest, "invalid_scope")
	for mode, want := range map[string]int{"500": http.StatusServiceUnavailable, "hang": http.StatusServiceUnavailable, "garbage": http.StatusBadGateway} {
		h.provider.setMode(mode)
		res := refresh(url.Values{"client_id": {"tv"}, "refresh_token": {rt}})
		if res.StatusCode != want || res.json(t)["error"] != "temporarily_unavailable" {
			t.Errorf("upstream %s: %d %s", mode, res.StatusCode, res.body)
		}
	}
	h.assertLogsClean(rt, "AT2-")
}
