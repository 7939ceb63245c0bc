package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const dcGrant = "urn:ietf:params:oauth:grant-type:device_code"

func TestMalformedRequests(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	raw := func(method, path, ctype, body string) *response {
		req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		return h.do(req, nil)
	}
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name   string
		res    func() *response
		status int
		code   string
	}{
		{"authorize JSON body", func() *response { return raw("POST", "/api/authorize", "application/json", `{"client_id":"tv"}`) }, 400, "invalid_request"},
		{"authorize no content type", func() *response { return raw("POST", "/api/authorize", "", "client_id=tv") }, 400, "invalid_request"},
		{"authorize multipart", func() *response { return raw("POST", "/api/authorize", "multipart/form-data; boundary=x", "--x--") }, 400, "invalid_request"},
		{"authorize form with charset", func() *response { return raw("POST", "/api/authorize", form+"; charset=UTF-8", "client_id=nobody") }, 401, "invalid_client"},
		{"authorize bad encoding", func() *response { return raw("POST", "/api/authorize", form, "client_id=%zz") }, 400, "invalid_request"},
		{"authorize no client", func() *response { return raw("POST", "/api/authorize", form, "scope=streaming") }, 400, "invalid_request"},
		{"authorize client only in query", func() *response { return raw("POST", "/api/authorize?client_id=tv", form, "") }, 400, "invalid_request"},
		{"authorize unknown client", func() *response { return raw("POST", "/api/authorize", form, "client_id=nobody") }, 401, "invalid_client"},
		{"authorize repeated client_id", func() *response { return raw("POST", "/api/authorize", form, "client_id=tv&client_id=tv") }, 400, "invalid_request"},
		{"authorize scope not allowed", func() *response { return raw("POST", "/api/authorize", form, "client_id=tv&scope=admin") }, 400, "invalid_scope"},
		{"authorize scope bad chars", func() *response {
			return raw("POST", "/api/authorize", form, "client_id=tv&scope="+url.QueryEscape("stream\"ing"))
		}, 400, "invalid_scope"},
		{"authorize scope double space", func() *response {
			return raw("POST", "/api/authorize", form, "client_id=tv&scope="+url.QueryEscape("streaming  user-read-email"))
		}, 400, "invalid_scope"},
		{"authorize huge body", func() *response {
			return raw("POST", "/api/authorize", form, "client_id=tv&scope="+strings.Repeat("a", 100<<10))
		}, 413, "invalid_request"},
		{"authorize GET", func() *response { return raw("GET", "/api/authorize", "", "") }, 405, "invalid_request"},
		{"token GET", func() *response { return raw("GET", "/api/token", "", "") }, 405, "invalid_request"},
		{"token JSON", func() *response { return raw("POST", "/api/token", "application/json", `{}`) }, 400, "invalid_request"},
		{"token no grant_type", func() *response { return raw("POST", "/api/token", form, "client_id=tv&device_code=x") }, 400, "invalid_request"},
		{"token password grant", func() *response {
			return raw("POST", "/api/token", form, "grant_type=password&client_id=tv&username=a&password=b")
		}, 400, "unsupported_grant_type"},
		{"token no device_code", func() *response {
			return raw("POST", "/api/token", form, "grant_type="+url.QueryEscape(dcGrant)+"&client_id=tv")
		}, 400, "invalid_request"},
		{"token unknown device_code", func() *response {
			return raw("POST", "/api/token", form, "grant_type="+url.QueryEscape(dcGrant)+"&client_id=tv&device_code=nope")
		}, 400, "invalid_grant"},
		{"token huge device_code", func() *response {
			return raw("POST", "/api/token", form, "grant_type="+url.QueryEscape(dcGrant)+"&client_id=tv&device_code="+strings.Repeat("x", 5000))
		}, 400, "invalid_grant"},
		{"token repeated device_code", func() *response {
			return raw("POST", "/api/token", form, "grant_type="+url.QueryEscape(dcGrant)+"&client_id=tv&device_code="+g.DeviceCode+"&device_code=x")
		}, 400, "invalid_request"},
		{"token unknown client", func() *response {
			return raw("POST", "/api/token", form, "grant_type="+url.QueryEscape(dcGrant)+"&client_id=nobody&device_code="+g.DeviceCode)
		}, 401, "invalid_client"},
		{"token bad basic encoding", func() *response {
			req, _ := http.NewRequest("POST", h.srv.URL+"/api/token", strings.NewReader("grant_type="+url.QueryEscape(dcGrant)+"&device_code=x"))
			req.Header.Set("Content-Type", form)
			req.SetBasicAuth("tv%zz", "x")
			return h.do(req, nil)
		}, 401, "invalid_client"},
		{"metadata POST", func() *response { return raw("POST", "/api/metadata", form, "") }, 405, "invalid_request"},
		{"unknown api path", func() *response { return raw("GET", "/api/nope", "", "") }, 404, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.res()
			m := wantOAuthError(t, res, tc.status, tc.code)
			if d, _ := m["error_description"].(string); d == "" {
				t.Errorf("no error_description: %s", res.body)
			}
			if tc.status == 405 && res.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// None of it disturbed the live record.
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
}

func TestVerifyInputs(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	tests := []struct {
		name   string
		method string
		target string
		form   url.Values
		status int
		want   string
	}{
		{"no code redirects to entry", "GET", "/api/verify", nil, http.StatusSeeOther, ""},
		// The entry form sends the typed code by GET.
		{"empty code", "GET", "/api/verify?user_code=", nil, http.StatusBadRequest, "Please enter the code"},
		{"malformed code", "GET", "/api/verify?user_code=hello", nil, http.StatusBadRequest, "not a valid code"},
		{"script as code", "GET", "/api/verify?" + url.Values{"user_code": {"<script>alert(1)</script>"}}.Encode(), nil, http.StatusBadRequest, "&lt;script&gt;"},
		{"unknown code", "GET", "/api/verify?user_code=BCDF-GHJK", nil, http.StatusNotFound, "could not find"},
		// A code posted without a decision (an entry page from before
		// the form used GET) is redirected to the GET: Post/Redirect/Get.
		{"typed code by POST", "POST", "/api/verify", url.Values{"user_code": {"hello"}}, http.StatusSeeOther, ""},
		{"unknown action", "POST", "/api/verify", url.Values{"user_code": {g.UserCode}, "action": {"maybe"}}, http.StatusBadRequest, "Unknown choice"},
		{"allow without csrf", "POST", "/api/verify", url.Values{"user_code": {g.UserCode}, "action": {"allow"}}, http.StatusForbidden, "enter the code again"},
		{"deny with wrong csrf", "POST", "/api/verify", url.Values{"user_code": {g.UserCode}, "action": {"deny"}, "csrf": {"AAAA"}}, http.StatusForbidden, "enter the code again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.browse(tc.method, tc.target, tc.form)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, res.body)
			}
			if tc.want != "" && !strings.Contains(string(res.body), tc.want) {
				t.Errorf("page lacks %q: %s", tc.want, res.body)
			}
			if strings.Contains(string(res.body), "<script>alert") {
				t.Error("unescaped input on the page")
			}
		})
	}

	t.Run("null origin from a no-referrer page is judged by the token", func(t *testing.T) {
		g2 := h.authorize("tv", "")
		csrf := h.confirm(g2.UserCode)
		req, _ := http.NewRequest("POST", h.srv.URL+"/api/verify", strings.NewReader(url.Values{"user_code": {g2.UserCode}, "csrf": {csrf}, "action": {"deny"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "null")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if res := h.do(req, h.browser); res.StatusCode != http.StatusOK {
			t.Errorf("deny with Origin: null and a good token: %d", res.StatusCode)
		}
		g3 := h.authorize("tv", "")
		csrf = h.confirm(g3.UserCode)
		req, _ = http.NewRequest("POST", h.srv.URL+"/api/verify", strings.NewReader(url.Values{"user_code": {g3.UserCode}, "csrf": {csrf}, "action": {"deny"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if res := h.do(req, h.browser); res.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site post: %d", res.StatusCode)
		}
	})
	t.Run("foreign origin", func(t *testing.T) {
		csrf := h.confirm(g.UserCode)
		req, _ := http.NewRequest("POST", h.srv.URL+"/api/verify", strings.NewReader(url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"allow"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if res := h.do(req, h.browser); res.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin allow: %d", res.StatusCode)
		}
	})
	// Nothing above changed the record.
	wantOAuthError(t, h.poll("tv", g.DeviceCode), http.StatusBadRequest, "authorization_pending")
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	for _, path := range []string{"/api/metadata", "/api/verify?user_code=" + g.UserCode, "/device", "/", "/nope"} {
		res := h.browse(http.MethodGet, path, nil)
		hd := res.Header
		csp := hd.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code", path)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, hd)
		}
	}
	// Pages made for one person — a confirmation, a result — are never
	// stored by a cache, old HTTP/1.0 ones included.
	for _, path := range []string{"/api/verify?user_code=" + g.UserCode, "/api/verify?user_code=BBBB-BBBB", "/api/callback?state=x"} {
		hd := h.browse(http.MethodGet, path, nil).Header
		if hd.Get("Cache-Control") != "no-store" || hd.Get("Pragma") != "no-cache" {
			t.Errorf("%s: Cache-Control %q, Pragma %q", path, hd.Get("Cache-Control"), hd.Get("Pragma"))
		}
	}
	res := h.browse(http.MethodGet, "/api/verify?user_code="+g.UserCode, nil)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://accounts.acme.test") {
		t.Errorf("page CSP does not allow the redirect to the provider: %q", csp)
	}
}

func TestStaticPages(t *testing.T) {
	h := newHarness(t)
	for path, status := range map[string]int{"/": 200, "/device": 200, "/assets/app.css": 200, "/nope": 404, "/device.html": 404, "/assets/../../go.mod": 301, "/embed.go": 404, "/assets": 404} {
		res := h.browse(http.MethodGet, path, nil)
		if res.StatusCode != status {
			t.Errorf("%s: %d, want %d", path, res.StatusCode, status)
		}
	}
	res := h.browse(http.MethodGet, "/device", nil)
	if !strings.Contains(string(res.body), `action="/api/verify"`) {
		t.Error("/device has no form posting to /api/verify")
	}
}

// TestGoldenAnswers pins the exact JSON of each answer; randomness and time
// are fixed, so the bytes are stable. Rewrite with -update.
func TestGoldenAnswers(t *testing.T) {
	h := newHarness(t)
	base := h.srv.URL
	norm := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(base), []byte("http://devicegate.test")) }
	answers := map[string]func() *response{}
	var g grant
	answers["authorize"] = func() *response {
		res := h.post("/api/authorize", url.Values{"client_id": {"tv"}, "scope": {"streaming"}})
		json.Unmarshal(res.body, &g)
		return res
	}
	answers["pending"] = func() *response { return h.poll("tv", g.DeviceCode) }
	answers["slow_down"] = func() *response { return h.poll("tv", g.DeviceCode) }
	answers["tokens"] = func() *response {
		h.clock.Advance(6e9)
		h.approve(g.UserCode)
		return h.poll("tv", g.DeviceCode)
	}
	answers["used"] = func() *response { return h.poll("tv", g.DeviceCode) }
	answers["metadata"] = func() *response {
		req, _ := http.NewRequest(http.MethodGet, base+"/.well-known/oauth-authorization-server", nil)
		return h.do(req, nil)
	}
	for _, name := range []string{"authorize", "pending", "slow_down", "tokens", "used", "metadata"} {
		got := norm(answers[name]().body)
		path := filepath.Join("testdata", name+".golden")
		if *update {
			os.MkdirAll("testdata", 0o755)
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGoldenAnswers -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s answer changed:\n got %s\nwant %s", name, got, want)
		}
	}
}

// unsizedBody hides its length, so Go's client sends it chunked, as a
// device client does that streams its form.
type unsizedBody struct{ r *strings.Reader }

func (u unsizedBody) Read(p []byte) (int, error) { return u.r.Read(p) }

// TestEmptyBodySaysWhatToChange: a body that is empty — as a chunked form
// arrives through the Azure Functions host's request forwarding, without its
// Content-Type — is answered invalid_request naming Content-Length, not
// "not a form"; a chunked body that does arrive is read as any other; and a
// Basic-authenticated client may still send an empty device authorization
// request (RFC 8628 §3.1).
func TestEmptyBodySaysWhatToChange(t *testing.T) {
	h := newHarness(t)
	form := "application/x-www-form-urlencoded"
	send := func(path, ctype string, body io.Reader, chunked bool, mod func(*http.Request)) *response {
		req, _ := http.NewRequest("POST", h.srv.URL+path, body)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if chunked {
			req.ContentLength = -1
		}
		if mod != nil {
			mod(req)
		}
		return h.do(req, nil)
	}
	basic := func(r *http.Request) { r.SetBasicAuth("console", "s3cret") }
	const emptyDesc = "the request body is empty: send the parameters as an application/x-www-form-urlencoded body with a Content-Length header"
	tests := []struct {
		name    string
		res     func() *response
		status  int
		code    string // "" for success
		wantDsc string
	}{
		{"token, empty and untyped (what the forwarding host delivers)", func() *response { return send("/api/token", "", nil, false, nil) }, 400, "invalid_request", emptyDesc},
		{"authorize, empty and untyped", func() *response { return send("/api/authorize", "", nil, false, nil) }, 400, "invalid_request", emptyDesc},
		{"authorize, empty form", func() *response { return send("/api/authorize", form, strings.NewReader(""), false, nil) }, 400, "invalid_request", emptyDesc},
		{"token, chunked with nothing in it", func() *response {
			return send("/api/token", form, unsizedBody{strings.NewReader("")}, true, nil)
		}, 400, "invalid_request", emptyDesc},
		{"authorize, chunked with nothing in it", func() *response {
			return send("/api/authorize", form, unsizedBody{strings.NewReader("")}, true, nil)
		}, 400, "invalid_request", emptyDesc},
		{"token, empty with Basic credentials", func() *response { return send("/api/token", "", nil, false, basic) }, 400, "invalid_request", emptyDesc},
		{"authorize, chunked form that arrives", func() *response {
			return send("/api/authorize", form, unsizedBody{strings.NewReader("client_id=tv")}, true, nil)
		}, 200, "", ""},
		{"authorize, empty with Basic credentials", func() *response { return send("/api/authorize", "", nil, false, basic) }, 200, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.res()
			if tc.code == "" {
				if res.StatusCode != tc.status {
					t.Fatalf("status %d: %s", res.StatusCode, res.body)
				}
				return
			}
			m := wantOAuthError(t, res, tc.status, tc.code)
			if d, _ := m["error_description"].(string); !strings.HasPrefix(d, tc.wantDsc) {
				t.Errorf("error_description %q, want it to start %q", d, tc.wantDsc)
			}
		})
	}
}

// TestNoPageIsAPostAnswer: Back from the result page must never land on a
// page that was the answer to a POST (Chromium shows ERR_CACHE_MISS for
// it). Both entry forms send the code by GET, and a code posted without a
// decision is redirected to the GET that shows its confirmation.
func TestNoPageIsAPostAnswer(t *testing.T) {
	h := newHarness(t)
	g := h.authorize("tv", "")
	for _, path := range []string{"/device", "/api/verify?user_code=hello"} {
		res := h.browse(http.MethodGet, path, nil)
		if !strings.Contains(string(res.body), `<form method="get" action="/api/verify" class="stack">`) {
			t.Errorf("the entry form at %s does not send the code by GET: %s", path, res.body)
		}
	}
	res := h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {strings.ToLower(g.UserCode)}})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || loc != "/api/verify?user_code="+url.QueryEscape(strings.ToLower(g.UserCode)) {
		t.Fatalf("a typed code by POST: %d %q", res.StatusCode, loc)
	}
	res = h.browse(http.MethodGet, loc, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(res.body), `value="allow"`) {
		t.Errorf("the GET the POST led to: %d %s", res.StatusCode, res.body)
	}
	// A long paste is cut as the entry page would cut it, not echoed whole
	// into a URL.
	res = h.browse(http.MethodPost, "/api/verify", url.Values{"user_code": {strings.Repeat("B", 500)}})
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || len(loc) > 100 {
		t.Errorf("a long paste: %d %q", res.StatusCode, loc)
	}
}
