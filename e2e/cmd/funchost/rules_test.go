package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// swaRoutes and flexRoutes are the function folders devicegate ships, read
// from the repository so the tests follow the package.
func loadTestRoutes(t *testing.T, mode string) []route {
	t.Helper()
	dir := t.TempDir()
	var prefix string
	switch mode {
	case modeSWA:
		prefix = "api"
		files, _ := filepath.Glob("../../../api/*/function.json")
		if len(files) == 0 {
			t.Fatal("no api/*/function.json")
		}
		for _, f := range files {
			copyFile(t, f, filepath.Join(dir, filepath.Base(filepath.Dir(f)), "function.json"))
		}
	case modeFlex:
		prefix = ""
		files, _ := filepath.Glob("../../../api/functionapp/*/function.json")
		if len(files) == 0 {
			t.Fatal("no api/functionapp/*/function.json")
		}
		for _, f := range files {
			copyFile(t, f, filepath.Join(dir, filepath.Base(filepath.Dir(f)), "function.json"))
		}
	}
	routes, err := loadRoutes(dir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return routes
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRoutesMatchAsTheHostMapsThem(t *testing.T) {
	swa, flex := loadTestRoutes(t, modeSWA), loadTestRoutes(t, modeFlex)
	tests := []struct {
		name   string
		routes []route
		method string
		path   string
		want   string // function name, "" for no route
	}{
		{"swa: prefix and route", swa, "POST", "/api/token", "token"},
		{"swa: literal segments ignore case", swa, "POST", "/API/Token", "token"},
		{"swa: a method function.json does not list matches nothing", swa, "GET", "/api/token", ""},
		{"swa: HEAD is not GET", swa, "HEAD", "/api/health", ""},
		{"swa: optional last segment absent", swa, "GET", "/api/callback", "callback"},
		{"swa: optional last segment present", swa, "GET", "/api/callback/zitadel", "callback"},
		{"swa: no deeper than the template", swa, "GET", "/api/callback/a/b", ""},
		{"swa: nothing outside the prefix", swa, "GET", "/device", ""},
		{"swa: not the metadata's well-known path (SWA rewrites it)", swa, "GET", "/.well-known/oauth-authorization-server", ""},
		{"flex: catch-all takes the root", flex, "GET", "/", "devicegate"},
		{"flex: catch-all takes pages", flex, "GET", "/device", "devicegate"},
		{"flex: catch-all takes assets", flex, "HEAD", "/assets/app.css", "devicegate"},
		{"flex: catch-all takes the well-known path", flex, "GET", "/.well-known/oauth-authorization-server", "devicegate"},
		{"flex: catch-all takes the API", flex, "POST", "/api/token", "devicegate"},
		{"flex: a method the catch-all does not list", flex, "PUT", "/api/token", ""},
		{"flex: OPTIONS is not listed", flex, "OPTIONS", "/api/token", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if rt := match(tt.routes, tt.path, tt.method); rt != nil {
				got = rt.name
			}
			if got != tt.want {
				t.Errorf("%s %s matched %q, want %q", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestForwardQueryJoinsRepeatedKeys(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"a=1", "?a=1"},
		{"a=1&a=2", "?a=1%2C2"},
		{"a=1&b=x&a=2", "?a=1%2C2&b=x"},
		{"State=1&state=2", "?State=1%2C2"},
		{"a", "?a="},
		{"&&a=1&", "?a=1"},
		{"q=x+y", "?q=x%20y"},
		{"q=%41%2c", "?q=A%2C"},
		{"q=%zz", "?q=%25zz"},
		{"user_code=WDJB-MJHT", "?user_code=WDJB-MJHT"},
		{"k=a%26b", "?k=a%26b"},
	}
	for _, tt := range tests {
		if got := forwardQuery(tt.raw); got != tt.want {
			t.Errorf("forwardQuery(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

var worker = &url.URL{Scheme: "http", Host: "127.0.0.1:40001"}

var inv = invocation{id: "00000000-0000-4000-8000-000000000001", version: hostVersion}

func TestForwardRequestRules(t *testing.T) {
	tests := []struct {
		name  string
		build func() *http.Request
		check func(t *testing.T, out *http.Request, body string)
		err   bool
	}{
		{
			name: "body with Content-Length is copied with its type",
			build: func() *http.Request {
				r := httptest.NewRequest("POST", "http://site.example/api/token", strings.NewReader("a=1"))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			},
			check: func(t *testing.T, out *http.Request, body string) {
				if body != "a=1" || out.ContentLength != 3 || out.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
					t.Errorf("body %q, length %d, type %q", body, out.ContentLength, out.Header.Get("Content-Type"))
				}
			},
		},
		{
			name: "an empty body is not copied and its content headers are dropped",
			build: func() *http.Request {
				r := httptest.NewRequest("POST", "http://site.example/api/token", nil)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Content-Language", "en")
				r.ContentLength = 0
				return r
			},
			check: func(t *testing.T, out *http.Request, body string) {
				if body != "" || out.Header.Get("Content-Type") != "" || out.Header.Get("Content-Language") != "" {
					t.Errorf("body %q, headers %v", body, out.Header)
				}
			},
		},
		{
			name: "a chunked body makes the host's client refuse the request",
			build: func() *http.Request {
				r := httptest.NewRequest("POST", "http://site.example/api/token", strings.NewReader("a=1"))
				r.ContentLength = -1
				r.TransferEncoding = []string{"chunked"}
				return r
			},
			err: true,
		},
		{
			name: "path and joined query go to the worker; Host and other headers are kept",
			build: func() *http.Request {
				r := httptest.NewRequest("GET", "http://site.example/api/callback?code=1&code=2", nil)
				r.Header.Set("X-Forwarded-For", "203.0.113.9:5000")
				r.Header.Add("Cookie", "a=1")
				r.Header.Set("Authorization", "Basic eDp5")
				return r
			},
			check: func(t *testing.T, out *http.Request, _ string) {
				if out.URL.String() != "http://127.0.0.1:40001/api/callback?code=1%2C2" || out.Host != "site.example" {
					t.Errorf("url %s host %s", out.URL, out.Host)
				}
				for _, h := range []string{"X-Forwarded-For", "Cookie", "Authorization"} {
					if out.Header.Get(h) == "" {
						t.Errorf("%s was not copied", h)
					}
				}
			},
		},
		{
			name: "the host adds its version, the invocation id and its product to User-Agent",
			build: func() *http.Request {
				r := httptest.NewRequest("GET", "http://site.example/api/health", nil)
				r.Header.Set("User-Agent", "curl/8")
				return r
			},
			check: func(t *testing.T, out *http.Request, _ string) {
				if out.Header.Get("X-Azure-Functions-HostVersion") != hostVersion || out.Header.Get("X-Azure-Functions-InvocationId") != inv.id ||
					out.Header.Get("User-Agent") != "curl/8 Azure-Functions-Host/"+hostVersion {
					t.Errorf("headers %v", out.Header)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := forwardRequest(tt.build(), worker, inv)
			if tt.err {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if out.Body != nil {
				body, _ = io.ReadAll(out.Body)
			}
			tt.check(t, out, string(body))
		})
	}
}

func TestProxyRequestRules(t *testing.T) {
	tests := []struct {
		name  string
		build func() *http.Request
		check func(t *testing.T, out *http.Request, body string)
	}{
		{
			name: "a chunked body is streamed, still chunked",
			build: func() *http.Request {
				r := httptest.NewRequest("POST", "http://site.example/api/token", strings.NewReader("a=1"))
				r.ContentLength = -1
				r.TransferEncoding = []string{"chunked"}
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			},
			check: func(t *testing.T, out *http.Request, body string) {
				if body != "a=1" || out.ContentLength != -1 || out.Header.Get("Content-Type") == "" {
					t.Errorf("body %q length %d type %q", body, out.ContentLength, out.Header.Get("Content-Type"))
				}
			},
		},
		{
			name: "the query passes as received",
			build: func() *http.Request {
				return httptest.NewRequest("GET", "http://site.example/api/callback?code=1&code=2&x=a+b", nil)
			},
			check: func(t *testing.T, out *http.Request, _ string) {
				if out.URL.String() != "http://127.0.0.1:40001/api/callback?code=1&code=2&x=a+b" {
					t.Errorf("url %s", out.URL)
				}
			},
		},
		{
			name: "an empty body keeps its Content-Type (EmptyHttpContent)",
			build: func() *http.Request {
				r := httptest.NewRequest("POST", "http://site.example/api/token", nil)
				r.ContentLength = 0
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			},
			check: func(t *testing.T, out *http.Request, body string) {
				if body != "" || out.Header.Get("Content-Type") == "" {
					t.Errorf("body %q headers %v", body, out.Header)
				}
			},
		},
		{
			name: "hop-by-hop headers are dropped, the rest copied",
			build: func() *http.Request {
				r := httptest.NewRequest("GET", "http://site.example/device", nil)
				r.Header.Set("Connection", "keep-alive")
				r.Header.Set("Keep-Alive", "timeout=5")
				r.Header.Set("Upgrade-Insecure-Requests", "1")
				r.Header.Set("Proxy-Authorization", "Basic eDp5")
				r.Header.Set("Cookie", "a=1")
				r.Header.Set("Accept-Language", "de")
				return r
			},
			check: func(t *testing.T, out *http.Request, _ string) {
				for _, h := range []string{"Connection", "Keep-Alive", "Upgrade-Insecure-Requests", "Proxy-Authorization"} {
					if out.Header.Get(h) != "" {
						t.Errorf("%s was copied", h)
					}
				}
				for _, h := range []string{"Cookie", "Accept-Language"} {
					if out.Header.Get(h) == "" {
						t.Errorf("%s was dropped", h)
					}
				}
			},
		},
		{
			name: "Host becomes the worker's; X-Forwarded-* are set from this hop, Forwarded removed",
			build: func() *http.Request {
				r := httptest.NewRequest("GET", "http://site.example/", nil)
				r.RemoteAddr = "198.51.100.7:61000"
				r.Header.Set("X-Forwarded-For", "10.9.9.9")
				r.Header.Set("X-Forwarded-Host", "evil.example")
				r.Header.Set("X-Forwarded-Prefix", "/x")
				r.Header.Set("Forwarded", "for=10.9.9.9")
				return r
			},
			check: func(t *testing.T, out *http.Request, _ string) {
				want := map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Host": "site.example", "X-Forwarded-Proto": "http", "X-Forwarded-Prefix": "", "Forwarded": ""}
				for h, v := range want {
					if got := strings.Join(out.Header.Values(h), ","); got != v {
						t.Errorf("%s = %q, want %q", h, got, v)
					}
				}
				if out.Host != worker.Host {
					t.Errorf("host %q", out.Host)
				}
			},
		},
		{
			name: "the host adds its version and invocation ids; User-Agent passes unchanged",
			build: func() *http.Request {
				r := httptest.NewRequest("GET", "http://site.example/", nil)
				r.Header.Set("User-Agent", "curl/8")
				r.Header.Set("X-Azure-Functions-InvocationId", "forged")
				return r
			},
			check: func(t *testing.T, out *http.Request, _ string) {
				if out.Header.Get("X-Azure-Functions-InvocationId") != inv.id || out.Header.Get("X-Ms-Invocation-Id") != inv.id ||
					out.Header.Get("X-Azure-Functions-HostVersion") != hostVersion || out.Header.Get("User-Agent") != "curl/8" {
					t.Errorf("headers %v", out.Header)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := proxyRequest(tt.build(), worker, inv)
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if out.Body != nil {
				body, _ = io.ReadAll(out.Body)
			}
			tt.check(t, out, string(body))
		})
	}
}

// received is what the test worker saw of one request.
type received struct {
	Method, Path, Query, Body, ContentType, Host string
	Called                                       bool
}

// startWorkerStub is a worker that records each request and answers as the
// path says.
func startWorkerStub(t *testing.T) (*url.URL, func() received) {
	t.Helper()
	var mu sync.Mutex
	var last received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = received{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Content-Type"), r.Host, true}
		mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/redirect"):
			http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
			http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
			http.Redirect(w, r, "https://provider.example/authorize?x=1", http.StatusFound)
		case strings.HasSuffix(r.URL.Path, "/teapot"):
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, `{"error":"x"}`)
		case strings.HasSuffix(r.URL.Path, "/stream"):
			w.Header().Set("Content-Type", "text/plain")
			w.(http.Flusher).Flush() // no Content-Length: chunked
			io.WriteString(w, "streamed")
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"ok": "1"})
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u, func() received { mu.Lock(); defer mu.Unlock(); r := last; last = received{}; return r }
}

// unsized hides a body's length, so Go's client sends it chunked, as a
// device client does whose body length is unknown.
type unsized struct{ io.Reader }

func TestHostPassesRequestsAndAnswersAsTheRealOne(t *testing.T) {
	workerURL, last := startWorkerStub(t)
	var target atomic.Pointer[url.URL]
	target.Store(workerURL)
	swa := httptest.NewServer(newHost(modeSWA, loadTestRoutes(t, modeSWA), &target))
	defer swa.Close()
	flex := httptest.NewServer(newHost(modeFlex, loadTestRoutes(t, modeFlex), &target))
	defer flex.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	type result struct {
		resp *http.Response
		body string
		got  received
	}
	do := func(t *testing.T, base, method, path string, body io.Reader) result {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{resp, string(b), last()}
	}

	tests := []struct {
		name   string
		base   string
		method string
		path   string
		body   func() io.Reader
		check  func(t *testing.T, r result)
	}{
		{"swa: a chunked POST never reaches the handler; the host answers 500", swa.URL, "POST", "/api/token",
			func() io.Reader { return unsized{strings.NewReader("grant_type=x")} },
			func(t *testing.T, r result) {
				if r.resp.StatusCode != 500 || r.body != "" || r.got.Called {
					t.Errorf("status %d body %q worker called %v", r.resp.StatusCode, r.body, r.got.Called)
				}
			}},
		{"swa: a POST with Content-Length reaches the handler whole", swa.URL, "POST", "/api/token",
			func() io.Reader { return strings.NewReader("grant_type=x") },
			func(t *testing.T, r result) {
				if r.got.Body != "grant_type=x" || r.got.ContentType != "application/x-www-form-urlencoded" || r.got.Path != "/api/token" {
					t.Errorf("worker got %+v", r.got)
				}
			}},
		{"swa: an empty POST arrives without body and without Content-Type", swa.URL, "POST", "/api/token",
			func() io.Reader { return bytes.NewReader(nil) },
			func(t *testing.T, r result) {
				if !r.got.Called || r.got.Body != "" || r.got.ContentType != "" {
					t.Errorf("worker got %+v", r.got)
				}
			}},
		{"flex: a chunked POST reaches the handler whole", flex.URL, "POST", "/api/token",
			func() io.Reader { return unsized{strings.NewReader("grant_type=x")} },
			func(t *testing.T, r result) {
				if r.resp.StatusCode != 200 || r.got.Body != "grant_type=x" || r.got.ContentType != "application/x-www-form-urlencoded" {
					t.Errorf("status %d worker got %+v", r.resp.StatusCode, r.got)
				}
			}},
		{"swa: redirects are not followed; Location and every Set-Cookie pass", swa.URL, "GET", "/api/callback/redirect", nil,
			func(t *testing.T, r result) { checkRedirect(t, r.resp) }},
		{"flex: redirects are not followed; Location and every Set-Cookie pass", flex.URL, "GET", "/redirect", nil,
			func(t *testing.T, r result) { checkRedirect(t, r.resp) }},
		{"swa: status, Content-Type and other headers pass", swa.URL, "GET", "/api/callback/teapot", nil,
			func(t *testing.T, r result) { checkTeapot(t, r.resp, r.body) }},
		{"flex: status, Content-Type and other headers pass", flex.URL, "GET", "/teapot", nil,
			func(t *testing.T, r result) { checkTeapot(t, r.resp, r.body) }},
		{"swa: a chunked answer passes, re-framed by the host", swa.URL, "GET", "/api/callback/stream", nil,
			func(t *testing.T, r result) {
				if r.body != "streamed" || r.resp.Header.Get("Content-Type") != "text/plain" {
					t.Errorf("body %q headers %v", r.body, r.resp.Header)
				}
			}},
		{"flex: a chunked answer passes", flex.URL, "GET", "/stream", nil,
			func(t *testing.T, r result) {
				if r.body != "streamed" {
					t.Errorf("body %q", r.body)
				}
			}},
		{"swa: no function route: 404, empty, worker not called", swa.URL, "GET", "/api/nothing", nil,
			func(t *testing.T, r result) {
				if r.resp.StatusCode != 404 || r.body != "" || r.got.Called {
					t.Errorf("status %d body %q called %v", r.resp.StatusCode, r.body, r.got.Called)
				}
			}},
		{"swa: a method function.json does not list: 404, worker not called", swa.URL, "DELETE", "/api/token", nil,
			func(t *testing.T, r result) {
				if r.resp.StatusCode != 404 || r.got.Called {
					t.Errorf("status %d called %v", r.resp.StatusCode, r.got.Called)
				}
			}},
		{"flex: the root page reaches the handler", flex.URL, "GET", "/", nil,
			func(t *testing.T, r result) {
				if r.got.Path != "/" || r.resp.StatusCode != 200 {
					t.Errorf("status %d worker got %+v", r.resp.StatusCode, r.got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			tt.check(t, do(t, tt.base, tt.method, tt.path, body))
		})
	}

	t.Run("worker not running: 503 Function host is not running.", func(t *testing.T) {
		target.Store(nil)
		defer target.Store(workerURL)
		r := do(t, swa.URL, "GET", "/api/health", nil)
		if r.resp.StatusCode != 503 || r.body != "Function host is not running." {
			t.Errorf("status %d body %q", r.resp.StatusCode, r.body)
		}
	})
}

func checkRedirect(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://provider.example/authorize?x=1" {
		t.Errorf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"a=1", "b=2"}) {
		t.Errorf("Set-Cookie %q", got)
	}
}

func checkTeapot(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("Content-Type") != "application/problem+json" ||
		resp.Header.Get("Cache-Control") != "no-store" || body != `{"error":"x"}` {
		t.Errorf("status %d headers %v body %q", resp.StatusCode, resp.Header, body)
	}
}

func TestCheckModeRefusesAPackageForTheOtherHost(t *testing.T) {
	var forward, proxied, both, profile hostJSON
	forward.CustomHandler.EnableForwardingHTTPRequest = true
	proxied.CustomHandler.EnableProxyingHTTPRequest = true
	both.CustomHandler.EnableForwardingHTTPRequest, both.CustomHandler.EnableProxyingHTTPRequest = true, true
	profile.ConfigurationProfile = "mcp-custom-handler"
	tests := []struct {
		mode string
		h    hostJSON
		ok   bool
	}{
		{modeSWA, forward, true},
		{modeSWA, proxied, false},
		{modeSWA, both, false}, // the host would proxy: InvokeAsync checks proxying first
		{modeFlex, proxied, true},
		{modeFlex, both, true},
		{modeFlex, forward, false},
		{modeFlex, profile, false},
		{"other", forward, false},
	}
	for _, tt := range tests {
		if err := checkMode(tt.mode, tt.h); (err == nil) != tt.ok {
			t.Errorf("checkMode(%s, %+v) = %v, want ok %v", tt.mode, tt.h.CustomHandler, err, tt.ok)
		}
	}
}
