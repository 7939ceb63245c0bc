package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// site is a stand-in deployment that answers like devicegate behind Static
// Web Apps; each field breaks one part of it the way a real deployment
// breaks. scripts/check-e2e.sh runs the check against the real binary and
// the real SWA CLI; these tests cover the breakages that need a platform
// this machine does not have (a proxy adding headers, a broken build).
type site struct {
	hostNotRunning bool   // SWA's answer when the handler did not start
	noAPI          bool   // only the static pages were deployed
	storeDown      bool   // the handler runs, Cosmos does not answer
	issuer         string // "" means the site's own URL
	noRewrite      bool   // staticwebapp.config.json missing
	noDevicesRoute bool   // its /devices route missing
	noPageHeaders  bool   // globalHeaders missing
	staticStart    bool   // / and misses served as static files (no / route, no navigationFallback)
	extraCSP       string // a second policy added on /api answers by a proxy
	provider       string // where Allow redirects
	acceptsForeign bool   // a callback that ignores state
	trustsClientIP bool   // takes X-Forwarded-For as sent by the caller
	prg            string // where a typed code posted without a decision is redirected ("" shows the confirmation at once, as devicegate did before)
	// chunked is what a chunked form meets: "" devicegate reads it (a
	// proxying host), "empty" it arrives empty, "refused" the forwarding
	// host's empty 500, "other" a front that answers something else.
	chunked string
}

func (s *site) start(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	const pageCSP = "default-src 'none'; form-action 'self' %s; frame-ancestors 'none'"
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self := srv.URL
		provider := s.provider
		if provider == "" {
			provider = "https://accounts.provider.example"
		}
		api := strings.HasPrefix(r.URL.Path, "/api/")
		if api && s.hostNotRunning {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "Function host is not running.")
			return
		}
		if api && s.noAPI {
			http.NotFound(w, r)
			return
		}
		if api || r.URL.Path == "/.well-known/oauth-authorization-server" {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Content-Security-Policy", fmt.Sprintf(pageCSP, provider))
			if s.extraCSP != "" {
				w.Header().Add("Content-Security-Policy", s.extraCSP)
			}
		}
		issuer := s.issuer
		if issuer == "" {
			issuer = self
		}
		switch r.URL.Path {
		case "/api/health":
			if s.storeDown {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"status":"unavailable","store":"unreachable"}`)
				return
			}
			client := "192.0.2.1"
			if xff := r.Header.Get("X-Forwarded-For"); s.trustsClientIP && xff != "" {
				client = xff
			}
			fmt.Fprintf(w, `{"status":"ok","store":"ok","client":%q}`, client)
		case "/devices":
			if s.noDevicesRoute {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, "<h1>Your devices</h1>")
		case "/.well-known/oauth-authorization-server":
			if s.noRewrite {
				http.NotFound(w, r)
				return
			}
			fallthrough
		case "/api/metadata":
			fmt.Fprintf(w, `{"issuer":%q,"device_authorization_endpoint":"%s/api/authorize","token_endpoint":"%s/api/token"}`, issuer, issuer, issuer)
		case "/api/token":
			if len(r.TransferEncoding) > 0 {
				switch s.chunked {
				case "refused":
					w.WriteHeader(http.StatusInternalServerError)
					return
				case "empty":
					w.WriteHeader(http.StatusBadRequest)
					fmt.Fprint(w, `{"error":"invalid_request","error_description":"the request body is empty: send the parameters with a Content-Length header"}`)
					return
				case "other":
					w.WriteHeader(http.StatusBadGateway)
					fmt.Fprint(w, "<html>Bad Gateway</html>")
					return
				}
			}
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusBadRequest)
			if r.PostFormValue("grant_type") == "devicegate-check" {
				fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
				return
			}
			fmt.Fprint(w, `{"error":"invalid_request"}`)
		case "/api/authorize":
			if r.FormValue("client_id") != "devicegate-check" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_client"}`)
				return
			}
			fmt.Fprintf(w, `{"device_code":"dc","user_code":"BCDF-GHJK","verification_uri":"%s/device","verification_uri_complete":"%s/device?user_code=BCDF-GHJK","expires_in":600,"interval":5}`, issuer, issuer)
		case "/api/verify":
			if r.Method == http.MethodGet && s.prg != "" && r.URL.Query().Get("user_code") == "BCDF-GHJK" {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, `<form method="post"><input type="hidden" name="csrf" value="tok"><button name="action" value="allow">Continue</button></form>`)
				return
			}
			if r.Header.Get("Origin") != self {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			if s.prg != "" && r.FormValue("action") == "" {
				http.Redirect(w, r, strings.ReplaceAll(s.prg, "SELF", self)+"?user_code="+url.QueryEscape(r.FormValue("user_code")), http.StatusSeeOther)
				return
			}
			if r.FormValue("action") == "allow" && r.FormValue("csrf") == "tok" {
				http.SetCookie(w, &http.Cookie{Name: "state", Value: "mine", Path: "/api/callback"})
				http.Redirect(w, r, provider+"/authorize?redirect_uri="+url.QueryEscape(issuer+"/api/callback")+"&state=mine", http.StatusSeeOther)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<form method="post"><input type="hidden" name="csrf" value="tok"><button name="action" value="allow">Continue</button></form>`)
		case "/api/callback":
			if !s.acceptsForeign && r.URL.Query().Get("state") != "mine" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, "all set")
		case "/device":
			if !s.noPageHeaders {
				w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
				w.Header().Set("X-Content-Type-Options", "nosniff")
			}
			fmt.Fprint(w, `<form action="/api/verify" method="post"></form>`)
		case "/":
			if s.staticStart {
				fmt.Fprint(w, `<html lang="en"><a href="/api/device?lang=de">Deutsch</a></html>`)
				return
			}
			w.Header().Set("Content-Language", "en")
			fmt.Fprint(w, `<html lang="en"><a href="/device">Enter a code</a></html>`)
		default:
			if s.staticStart {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Language", "en")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<html lang="en"><h1>Page not found</h1><a href="/device">Enter a code</a></html>`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func check(t *testing.T, target string, args ...string) (int, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(context.Background(), append(args, target), func(string) string { return "" }, &out, &errs)
	return code, out.String() + errs.String()
}

// TestDiagnoses: each broken deployment fails the check with the diagnosis
// that names its cause, and a sound one passes.
func TestDiagnoses(t *testing.T) {
	tests := []struct {
		name   string
		site   site
		anchor string // "" means the check passes
	}{
		{"sound deployment", site{}, ""},
		{"handler did not start", site{hostNotRunning: true}, "handler-did-not-start"},
		{"API not deployed", site{noAPI: true}, "no-api"},
		{"store unreachable", site{storeDown: true}, "store-unreachable"},
		{"public URL is another address", site{issuer: "https://old.example.org"}, "wrong-public-url"},
		{"rewrite missing", site{noRewrite: true}, "well-known-rewrite"},
		{"/devices route missing", site{noDevicesRoute: true}, "devices-rewrite"},
		{"page headers missing", site{noPageHeaders: true}, "page-headers"},
		{"start and not-found pages static", site{staticStart: true}, "site-missing"},
		{"a second CSP names another provider", site{provider: "https://id.fork.example", extraCSP: "form-action 'self' https://accounts.spotify.com"}, "csp-blocks-provider"},
		{"a second CSP without form-action does not block", site{extraCSP: "default-src 'none'"}, ""},
		{"callback accepts a foreign state", site{acceptsForeign: true}, "callback-accepts-foreign-state"},
		{"typed code redirected to its confirmation (Post/Redirect/Get)", site{prg: "/api/verify"}, ""},
		{"typed code redirected off the site", site{prg: "https://elsewhere.example/api/verify"}, "unexpected-answer"},
		{"client address taken from the caller's X-Forwarded-For", site{trustsClientIP: true}, "forwarded-for-spoofable"},
		{"a chunked form is refused by the forwarding host", site{chunked: "refused"}, ""},
		{"a chunked form arrives empty", site{chunked: "empty"}, ""},
		{"a chunked form gets an answer no known host gives: noted, not failed", site{chunked: "other"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.site.start(t)
			code, out := check(t, srv.URL)
			if tt.anchor == "" {
				if code != 0 {
					t.Fatalf("exit %d, want 0:\n%s", code, out)
				}
				return
			}
			if code != 1 || !strings.Contains(out, "see docs/DEPLOY.md#"+tt.anchor+"\n") {
				t.Fatalf("exit %d, want 1 with a pointer to #%s:\n%s", code, tt.anchor, out)
			}
			if strings.Count(out, "see docs/DEPLOY.md#") != 1 {
				t.Errorf("one cause should give one diagnosis:\n%s", out)
			}
		})
	}
}

// TestHostingDetected: the hosting is told by the default host name each
// Azure service gives, loopback is this machine, a custom domain is
// unknown; -hosting overrides it, and a wrong value is a usage error.
func TestHostingDetected(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want hosting
	}{
		{"https://calm-river-0a1b2c3d4.5.azurestaticapps.net", staticWebApp},
		{"https://devicegate-abc123.westeurope-01.azurewebsites.net", functionApp},
		{"https://devicegate-app.kindsea-1234.westeurope.azurecontainerapps.io", containerApp},
		{"http://127.0.0.1:8080", local},
		{"http://[::1]:8080", local},
		{"http://localhost:8080", local},
		{"https://devicegate.example.net", unknown},
		{"https://azurestaticapps.net.example", unknown},
	} {
		u, _ := url.Parse(tc.url)
		if got := detectHosting(u); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.url, got, tc.want)
		}
	}
	for _, tc := range []struct {
		flag string
		want hosting
		ok   bool
	}{
		{"auto", unknown, true}, {"staticWebApp", staticWebApp, true}, {"functionapp", functionApp, true},
		{"containerApp", containerApp, true}, {"local", local, true}, {"swa", unknown, false}, {"", unknown, false},
	} {
		if got, ok := parseHosting(tc.flag); got != tc.want || ok != tc.ok {
			t.Errorf("-hosting %q: %q %v", tc.flag, got, ok)
		}
	}
	if code, _ := check(t, "https://x.example", "-hosting", "swa"); code != 2 {
		t.Errorf("-hosting swa: exit %d, want 2", code)
	}
}

// TestDiagnosesNameTheHosting: each diagnosis that depends on where
// devicegate runs speaks of the hosting met — Static Web Apps' config
// file only on Static Web Apps, the function app's package, the
// container, the local process — and one of unknown hosting (a custom
// domain) names each hosting's cause.
func TestDiagnosesNameTheHosting(t *testing.T) {
	tests := []struct {
		name string
		site site
		want map[hosting]string // a phrase the diagnosis holds for each hosting
	}{
		{"well-known not reaching devicegate", site{noRewrite: true}, map[hosting]string{
			staticWebApp: "staticwebapp.config.json did not reach the site",
			functionApp:  "the package lacks the catch-all function",
			containerApp: "something in front of the container answers this path",
			local:        "something in front of the container answers this path",
		}},
		{"/devices not reaching devicegate", site{noDevicesRoute: true}, map[hosting]string{
			staticWebApp: "the /devices route of staticwebapp.config.json",
			functionApp:  "redeploy dist/functionapp",
			containerApp: "redeploy the current image",
			local:        "run the current one",
		}},
		{"start page static", site{staticStart: true}, map[hosting]string{
			staticWebApp: "lacks the / route to /api/home or the navigationFallback to /api/notfound",
			functionApp:  "redeploy dist/functionapp",
			containerApp: "redeploy the current image",
			local:        "run the current one",
		}},
		{"no API", site{noAPI: true}, map[hosting]string{
			staticWebApp: "did not upload dist/api (api_location)",
			functionApp:  "the package lacks the catch-all function of dist/functionapp",
			containerApp: "it runs another image than devicegate's",
			local:        "another program on this port?",
		}},
		{"Functions host without its handler", site{hostNotRunning: true}, map[hosting]string{
			staticWebApp: "the Static Web App's managed Functions host runs",
			functionApp:  "in the function app's Application Insights",
			containerApp: "which a container app does not run",
			local:        "the handler did not start — its output says why",
		}},
		{"store unreachable", site{storeDown: true}, map[hosting]string{
			staticWebApp: "the DEVICEGATE_COSMOS_* settings, the account's firewall",
			functionApp:  "the DEVICEGATE_COSMOS_* settings, the account's firewall",
			containerApp: "the DEVICEGATE_COSMOS_* settings, the account's firewall",
			local:        "its output names the error",
		}},
		{"public URL", site{issuer: "https://old.example.org"}, map[hosting]string{
			staticWebApp: "and redeploy",
			functionApp:  "and redeploy",
			containerApp: "and redeploy",
			local:        "start devicegate with DEVICEGATE_PUBLIC_URL=",
		}},
		{"CSP", site{provider: "https://id.fork.example", extraCSP: "form-action 'self' https://accounts.spotify.com"}, map[hosting]string{
			staticWebApp: "staticwebapp.config.json's globalHeaders",
			functionApp:  "added by something in front of devicegate",
			containerApp: "added by something in front of devicegate",
			local:        "added by something in front of devicegate",
		}},
	}
	for _, tt := range tests {
		srv := tt.site.start(t)
		for _, h := range hostings {
			_, out := check(t, srv.URL, "-hosting", string(h))
			diag := regexp.MustCompile(`(?m)^ +diagnosis: (.*)$`).FindStringSubmatch(out)
			if diag == nil || !strings.Contains(diag[1], tt.want[h]) {
				t.Errorf("%s on %s: want a diagnosis with %q:\n%s", tt.name, h, tt.want[h], out)
				continue
			}
			if h != staticWebApp && strings.Contains(diag[1], "staticwebapp.config.json") {
				t.Errorf("%s on %s speaks of Static Web Apps' configuration: %s", tt.name, h, diag[1])
			}
			if !strings.Contains(out, "(hosting: "+h.describe()+")") {
				t.Errorf("%s on %s: the hosting is not named:\n%s", tt.name, h, out)
			}
		}
		// A custom domain (here: no -hosting, a name the check cannot
		// place) gets every hosting's wording, each labelled.
		var out bytes.Buffer
		c := newChecker(mustURL(t, srv.URL), "devicegate-check", 5*time.Second, &out)
		c.run(context.Background())
		diag := regexp.MustCompile(`(?m)^ +diagnosis: (.*)$`).FindStringSubmatch(out.String())
		if diag == nil {
			t.Fatalf("%s, unknown hosting: no diagnosis:\n%s", tt.name, out.String())
		}
		for _, h := range hostings {
			if !strings.Contains(diag[1], tt.want[h]) || !strings.Contains(diag[1], string(h)) {
				t.Errorf("%s, unknown hosting: lacks %s's %q: %s", tt.name, h, tt.want[h], diag[1])
			}
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUnreachableAndUsage(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	if code, out := check(t, addr); code != 1 || !strings.Contains(out, "#site-unreachable") {
		t.Errorf("closed port: exit %d\n%s", code, out)
	}
	for _, bad := range []string{"ftp://x", "https://x/api", "not a url"} {
		if code, _ := check(t, bad); code != 2 {
			t.Errorf("%q: exit %d, want 2", bad, code)
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-client-secret-env", "UNSET", "https://x"}, func(string) string { return "" }, &out, &out); code != 2 {
		t.Errorf("empty secret variable: exit %d, want 2", code)
	}
}

// TestOutputHoldsNoCodes: the check prints neither the device code nor the
// user code it was given.
func TestOutputHoldsNoCodes(t *testing.T) {
	srv := (&site{}).start(t)
	_, out := check(t, srv.URL)
	if strings.Contains(out, "BCDF-GHJK") || strings.Contains(out, `"dc"`) {
		t.Errorf("output holds a code:\n%s", out)
	}
}

func TestFormActionAllows(t *testing.T) {
	self, _ := url.Parse("https://dg.example")
	tests := []struct {
		policies []string
		target   string
		want     bool
	}{
		{[]string{"default-src 'none'"}, "https://any.example/x", true}, // no fallback to default-src
		{[]string{"form-action 'self'"}, "https://dg.example/demo/authorize", true},
		{[]string{"form-action 'self'"}, "https://accounts.spotify.com/authorize", false},
		{[]string{"form-action 'none'"}, "https://dg.example/", false},
		{[]string{"form-action 'self' https://accounts.spotify.com"}, "https://accounts.spotify.com/authorize?x=1", true},
		{[]string{"form-action 'self' https://accounts.spotify.com", "form-action 'self'"}, "https://accounts.spotify.com/authorize", false},
		{[]string{"form-action 'self' https://a.example, form-action https://b.example"}, "https://a.example/", false},
		{[]string{"form-action *.example.org"}, "https://id.example.org/", true},
		{[]string{"form-action *.example.org"}, "https://example.org/", false},
		{[]string{"form-action https:"}, "https://anything.example/", true},
		{[]string{"form-action http://id.example"}, "https://id.example/", true},
		{[]string{"form-action https://id.example"}, "http://id.example/", false},
		{[]string{"form-action https://id.example:8443"}, "https://id.example/", false},
		{[]string{"form-action https://id.example:*"}, "https://id.example:9/", true},
		{[]string{"form-action https://id.example/only/this"}, "https://id.example/other", true}, // paths ignored after a redirect
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, p := range tt.policies {
			h.Add("Content-Security-Policy", p)
		}
		target, _ := url.Parse(tt.target)
		if got, blocking := formActionAllows(h, self, target); got != tt.want {
			t.Errorf("%q → %s: got %v (%s), want %v", tt.policies, tt.target, got, blocking, tt.want)
		}
	}
}

// TestDiagnosesAreDocumented: every anchor the check points at is a heading
// of docs/DEPLOY.md (GitHub's heading slugs).
func TestDiagnosesAreDocumented(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	slugs := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		s := strings.ToLower(strings.TrimSpace(m[1]))
		s = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(s, "")
		slugs[strings.ReplaceAll(s, " ", "-")] = true
	}
	anchors := regexp.MustCompile(`fail\("([a-z-]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(anchors) < 10 {
		t.Fatalf("found only %d diagnoses in main.go", len(anchors))
	}
	for _, a := range anchors {
		if !slugs[a[1]] {
			t.Errorf("docs/DEPLOY.md has no heading for #%s", a[1])
		}
	}
}

// TestChunkedFormReport: the check notes which answer a chunked form got,
// so the operator knows whether device clients must send Content-Length,
// without failing on it; and the answer it recognises as "arrived empty" is
// the one devicegate gives.
func TestChunkedFormReport(t *testing.T) {
	for chunked, want := range map[string]string{
		"":        "reaches devicegate whole",
		"empty":   "arrives empty: device clients must send Content-Length",
		"refused": "refused by the Functions host (500): device clients must send Content-Length",
		"other":   "answered 502, as neither devicegate nor the Functions host does: device clients must send Content-Length",
	} {
		srv := (&site{chunked: chunked}).start(t)
		code, out := check(t, srv.URL)
		if code != 0 || !regexp.MustCompile(`(?m)^note +chunked form +`+regexp.QuoteMeta(want)).MatchString(out) {
			t.Errorf("chunked %q: exit %d, want a line saying %q:\n%s", chunked, code, want, out)
		}
	}
	src, err := os.ReadFile("../../api/internal/httpapi/api.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `WithDescription("`+emptyBodyPrefix) {
		t.Errorf("api/internal/httpapi/api.go no longer answers an empty body with a description starting %q", emptyBodyPrefix)
	}
}
