package httpapi_test

// Tests behind protections that other tests only brushed past: each fails
// when the protection it names alone is removed (scripts/mutants.sh removes
// each in turn; SECURITY.md's table names them).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/httpapi"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/store"
)

// TestDecisionNeedsItsFormToken: a browser that holds a valid cookie (it
// opened the confirmation page) but posts Allow or Deny with an empty or
// missing form token is refused, and the code stays pending. This is the
// case a cross-site form posted from the person's own browser presents:
// the cookie rides along, the token does not.
func TestDecisionNeedsItsFormToken(t *testing.T) {
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"allow, empty token", url.Values{"csrf": {""}, "action": {"allow"}}},
		{"allow, no token field", url.Values{"action": {"allow"}}},
		{"deny, empty token", url.Values{"csrf": {""}, "action": {"deny"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			g := h.authorize("tv", "")
			h.confirm(g.UserCode) // the browser now holds a good cookie
			tc.form.Set("user_code", g.UserCode)
			res := h.browse(http.MethodPost, "/api/verify", tc.form)
			if res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
				t.Fatalf("decision without its token: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
			}
			rec, err := h.record(g.UserCode)
			if err != nil || rec.Status != store.StatusPending || rec.Failures != 1 {
				t.Errorf("the code after a decision without a token: %+v, %v; want pending with one failure", rec, err)
			}
			wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
		})
	}
}

// TestClientSecretComparedWhole: a confidential client authenticates only
// with its whole secret, byte for byte: a prefix, an extension or another
// case is invalid_client, by both methods.
func TestClientSecretComparedWhole(t *testing.T) {
	h := newHarness(t)
	// "console" has the secret "s3cret" (harness_test.go).
	for _, secret := range []string{"s", "s3cre", "s3cretX", "S3CRET", "s3cre\x00"} {
		wantOAuthError(t, h.post("/api/authorize", url.Values{"client_id": {"console"}, "client_secret": {secret}}), http.StatusUnauthorized, "invalid_client")
		res := h.post("/api/authorize", url.Values{}, func(r *http.Request) { r.SetBasicAuth("console", url.QueryEscape(secret)) })
		wantOAuthError(t, res, http.StatusUnauthorized, "invalid_client")
	}
	if res := h.post("/api/authorize", url.Values{"client_id": {"console"}, "client_secret": {"s3cret"}}); res.StatusCode != http.StatusOK {
		t.Errorf("the right secret: %d %s", res.StatusCode, res.body)
	}
}

// TestCookiesOverHTTPS: on an https public URL both cookies carry the
// __Host- prefix with Secure, Path=/ and no Domain (so no subdomain and no
// plain-http page can plant or overwrite them), HttpOnly and SameSite=Lax;
// every answer carries HSTS; and the whole flow works with them. Over
// plain http (loopback only) the prefix, Secure and HSTS are absent, but
// HttpOnly and SameSite=Lax stay.
func TestCookiesOverHTTPS(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []harnessOpt
		prefix string
		secure bool
	}{
		{"https", []harnessOpt{withTLS()}, "__Host-", true},
		{"http", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts...)
			if got := strings.HasPrefix(h.srv.URL, "https://"); got != tc.secure {
				t.Fatalf("harness URL %s", h.srv.URL)
			}
			g := h.authorize("tv", "")
			page := h.browse(http.MethodGet, "/api/verify?user_code="+url.QueryEscape(g.UserCode), nil)
			csrf := csrfFrom(t, page.body)
			allow := h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"allow"}})
			if allow.StatusCode != http.StatusFound {
				t.Fatalf("allow: %d %s", allow.StatusCode, allow.body)
			}
			for _, c := range []struct {
				res  *response
				name string
			}{{page, "devicegate-csrf"}, {allow, "devicegate-state"}} {
				ck := cookieNamed(c.res, tc.prefix+c.name)
				if ck == nil {
					t.Fatalf("no cookie %s%s among %v", tc.prefix, c.name, c.res.Header.Values("Set-Cookie"))
				}
				if ck.Secure != tc.secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.MaxAge <= 0 {
					t.Errorf("cookie %s: %q", ck.Name, c.res.Header.Values("Set-Cookie"))
				}
			}
			for _, res := range []*response{page, allow, h.post("/api/authorize", url.Values{"client_id": {"tv"}})} {
				hsts := res.Header.Get("Strict-Transport-Security")
				if tc.secure && (!strings.Contains(hsts, "max-age=63072000") || !strings.Contains(hsts, "includeSubDomains")) {
					t.Errorf("https answer without HSTS: %q", hsts)
				}
				if !tc.secure && hsts != "" {
					t.Errorf("plain-http answer with HSTS: %q", hsts)
				}
			}
			// The flow finishes with these cookies: the callback reads the
			// state cookie under its name.
			q, _ := url.Parse(allow.Header.Get("Location"))
			code := "code-" + q.Query().Get("state")[:8]
			h.provider.issue(code, q.Query().Get("code_challenge"))
			res := h.browse(http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {q.Query().Get("state")}}.Encode(), nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("callback: %d %s", res.StatusCode, res.body)
			}
			if res := h.poll("tv", g.DeviceCode); res.StatusCode != http.StatusOK {
				t.Errorf("poll: %d %s", res.StatusCode, res.body)
			}
		})
	}
}

// TestHTTPSCookieWithoutPrefixIgnored: over https devicegate reads its
// cookies only under the __Host- name, so a cookie planted under the bare
// name (which a subdomain or a plain-http page could set) counts for
// nothing: a decision carrying only such a cookie is refused.
func TestHTTPSCookieWithoutPrefixIgnored(t *testing.T) {
	h := newHarness(t, withTLS())
	g := h.authorize("tv", "")
	page := h.browse(http.MethodGet, "/api/verify?user_code="+url.QueryEscape(g.UserCode), nil)
	csrf := csrfFrom(t, page.body)
	ck := cookieNamed(page, "__Host-devicegate-csrf")
	if ck == nil {
		t.Fatalf("no __Host- cookie: %v", page.Header.Values("Set-Cookie"))
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/verify", strings.NewReader(url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"allow"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "devicegate-csrf", Value: ck.Value})
	if res := h.do(req, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("decision with the cookie under its bare name: %d", res.StatusCode)
	}
}

// TestEveryAnswerCarriesSecurityHeaders: every kind of answer — API
// success and error, token, page, result page, static page, 404, 405, 413,
// 429 — carries nosniff, no-referrer, DENY framing, same-origin opener
// isolation, a Permissions-Policy and a CSP that forbids framing; every
// API answer (success or error) is no-store with the API's own CSP, every
// page rendered for a person is no-store with the page CSP (self-only
// scripts and styles, no inline code, no base URI).
func TestEveryAnswerCarriesSecurityHeaders(t *testing.T) {
	h := newHarness(t, withLimits(ratelimit.Rule{Limit: 3, Window: time.Minute}, ratelimit.Rule{Limit: 50, Window: time.Minute}, false))
	g := h.authorize("tv", "")
	g2 := h.authorize("radio", "")
	h.signIn("tv") // the third authorization of this address's budget of 3
	type answer struct {
		name string
		res  *response
		api  bool // an API answer (JSON)
		page bool // a page rendered for one person
	}
	big := url.Values{"client_id": {"tv"}, "pad": {strings.Repeat("x", 20<<10)}}
	answers := []answer{
		{"revoked refresh", h.post("/api/token", url.Values{"client_id": {"tv"}, "grant_type": {"refresh_token"}, "refresh_token": {"nope"}}), true, false},
		{"authorize 429", h.post("/api/authorize", url.Values{"client_id": {"radio"}}), true, false},
		{"poll pending", h.poll("tv", g.DeviceCode), true, false},
		{"token 401", h.post("/api/token", url.Values{"client_id": {"console"}, "client_secret": {"no"}, "grant_type": {httpapi.GrantTypeDeviceCode}, "device_code": {"x"}}), true, false},
		{"token 413", h.post("/api/token", big), true, false},
		{"token 405", h.do(mustRequest(t, http.MethodGet, h.srv.URL+"/api/token"), nil), true, false},
		{"no such endpoint", h.browse(http.MethodGet, "/api/nope", nil), true, false},
		{"metadata", h.browse(http.MethodGet, "/api/metadata", nil), true, false},
		{"health", h.browse(http.MethodGet, "/api/health", nil), true, false},
		{"confirmation", h.browse(http.MethodGet, "/api/verify?user_code="+url.QueryEscape(g.UserCode), nil), false, true},
		{"unknown code", h.browse(http.MethodGet, "/api/verify?user_code=BBBB-BBBB", nil), false, true},
		{"callback without cookie", h.do(mustRequest(t, http.MethodGet, h.srv.URL+"/api/callback?state=x&code=y"), nil), false, true},
		{"static entry page", h.browse(http.MethodGet, "/device", nil), false, false},
		{"static 404", h.browse(http.MethodGet, "/nope", nil), false, false},
	}
	// The answer that carries tokens.
	h.approve(g2.UserCode)
	answers = append(answers, answer{"poll tokens", h.poll("radio", g2.DeviceCode), true, false})
	const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
	for _, a := range answers {
		hd := a.res.Header
		for k, want := range map[string]string{
			"X-Content-Type-Options":     "nosniff",
			"Referrer-Policy":            "no-referrer",
			"X-Frame-Options":            "DENY",
			"Cross-Origin-Opener-Policy": "same-origin",
		} {
			if got := hd.Get(k); got != want {
				t.Errorf("%s (%d): %s %q, want %q", a.name, a.res.StatusCode, k, got, want)
			}
		}
		if pp := hd.Get("Permissions-Policy"); !strings.Contains(pp, "camera=()") || !strings.Contains(pp, "geolocation=()") {
			t.Errorf("%s: Permissions-Policy %q", a.name, pp)
		}
		csp := hd.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", a.name, csp)
		}
		if a.api {
			if csp != apiCSP {
				t.Errorf("%s: API CSP %q, want %q", a.name, csp, apiCSP)
			}
			if hd.Get("Content-Type") != "application/json" {
				t.Errorf("%s: Content-Type %q", a.name, hd.Get("Content-Type"))
			}
		}
		if a.page {
			for _, d := range []string{"script-src 'self'", "style-src 'self'", "base-uri 'none'", "form-action 'self' https://accounts.acme.test"} {
				if !strings.Contains(csp, d) {
					t.Errorf("%s: page CSP %q lacks %s", a.name, csp, d)
				}
			}
		}
		if (a.api || a.page) && (hd.Get("Cache-Control") != "no-store" || hd.Get("Pragma") != "no-cache") {
			t.Errorf("%s (%d): Cache-Control %q, Pragma %q", a.name, a.res.StatusCode, hd.Get("Cache-Control"), hd.Get("Pragma"))
		}
	}
	for _, a := range answers {
		if want := map[string]int{"authorize 429": 429, "token 413": 413, "token 405": 405, "token 401": 401, "poll tokens": 200}[a.name]; want != 0 && a.res.StatusCode != want {
			t.Errorf("%s: status %d, want %d (the answer this row is meant to cover)", a.name, a.res.StatusCode, want)
		}
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestFormBodiesOnly: a body of another type is refused with a
// description that says which type to send (RFC 6749 §3.2, RFC 8628
// §3.1), rather than read as if it were absent.
func TestFormBodiesOnly(t *testing.T) {
	h := newHarness(t)
	for _, ct := range []string{"application/json", "text/plain", "multipart/form-data; boundary=x"} {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/authorize", strings.NewReader("client_id=tv"))
		req.Header.Set("Content-Type", ct)
		m := wantOAuthError(t, h.do(req, nil), http.StatusBadRequest, "invalid_request")
		if d, _ := m["error_description"].(string); d != "the request body must be application/x-www-form-urlencoded" {
			t.Errorf("%s body: %q, want the answer that names the form type (not, say, an empty body)", ct, d)
		}
	}
}

// TestQueryParametersNotRead: only the body is the form (RFC 6749 §3.2:
// the token endpoint takes POST parameters; RFC 8628 §3.1 the same), so a
// parameter put in the query string of a POST counts for nothing.
func TestQueryParametersNotRead(t *testing.T) {
	h := newHarness(t)
	wantOAuthError(t, h.post("/api/authorize?client_id=tv", url.Values{"scope": {"streaming"}}), http.StatusBadRequest, "invalid_request")
	res := h.post("/api/token?device_code=x&grant_type="+url.QueryEscape(httpapi.GrantTypeDeviceCode), url.Values{"client_id": {"tv"}})
	wantOAuthError(t, res, http.StatusBadRequest, "invalid_request")
}

// TestProviderErrorCodeShapeChecked: an error the provider's redirect
// carries reaches the device only if it has the shape of an RFC 6749
// §4.1.2.1 code, so a crafted redirect cannot put its own words into what
// the device shows.
func TestProviderErrorCodeShapeChecked(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	q := h.allow(g.UserCode)
	res := h.browse(http.MethodGet, "/api/callback?"+url.Values{"error": {"Call +1 555 0100 to restore your account"}, "state": {q.Get("state")}}.Encode(), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", res.StatusCode, res.body)
	}
	m := wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
	if d, _ := m["error_description"].(string); strings.Contains(d, "555") || !strings.Contains(d, "invalid error code") {
		t.Errorf("the device was told %q", d)
	}
}

// TestCallbackChecksTheIssuer: for a provider whose issuer is known (oidc),
// the callback refuses an authorization response naming another issuer,
// and — when the provider promised RFC 9207 iss — one naming none; the
// device is told the sign-in ended. The right iss is accepted.
func TestCallbackChecksTheIssuer(t *testing.T) {
	const issuer = "https://accounts.acme.test"
	for _, tc := range []struct {
		name     string
		promised bool
		iss      string
		ok       bool
	}{
		{"another issuer", false, "https://evil.test", false},
		{"none, though promised", true, "", false},
		{"the right one", true, issuer, true},
		{"none, not promised", false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withIssuer(issuer, tc.promised))
			g := h.authorize("tv", "")
			q := h.allow(g.UserCode)
			code := "code-" + q.Get("state")[:8]
			h.provider.issue(code, q.Get("code_challenge"))
			v := url.Values{"code": {code}, "state": {q.Get("state")}}
			if tc.iss != "" {
				v.Set("iss", tc.iss)
			}
			res := h.browse(http.MethodGet, "/api/callback?"+v.Encode(), nil)
			if tc.ok {
				if res.StatusCode != http.StatusOK {
					t.Fatalf("callback: %d %s", res.StatusCode, res.body)
				}
				if res := h.poll("tv", g.DeviceCode); res.StatusCode != http.StatusOK {
					t.Errorf("poll: %d %s", res.StatusCode, res.body)
				}
				return
			}
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(res.body), "different provider") {
				t.Fatalf("callback with iss %q: %d %s", tc.iss, res.StatusCode, res.body)
			}
			if h.provider.exchangeCount() != 0 {
				t.Error("the code was exchanged")
			}
			wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "access_denied")
		})
	}
}
