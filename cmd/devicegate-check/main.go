// Command devicegate-check probes a live devicegate deployment end to end,
// without a person, and explains each failure:
//
//	go run ./cmd/devicegate-check https://your-site.azurestaticapps.net
//
// It checks, in order: the API answers (/api/health); the metadata's issuer
// is the URL checked and its endpoints live under it; /device is served with
// its security headers and /.well-known is rewritten to the metadata; a
// device authorization for the check client (default "devicegate-check",
// which the deployment must list in DEVICEGATE_CLIENTS) succeeds; the
// verification page shows the confirmation for that code, and its
// Content-Security-Policy lets the browser follow "Allow" to the provider;
// the callback refuses a state that is not this browser's.
//
// It never completes a sign-in: the check's record is left to expire. It
// prints no device code, user code, token or secret.
//
// Exit status: 0 all passed, 1 a check failed, 2 usage.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/devicegate/devicegate/internal/version"
)

// docs is where every diagnosis points; the anchors are headings of
// docs/DEPLOY.md's "When the check fails" section.
const docs = "docs/DEPLOY.md#"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("devicegate-check", flag.ContinueOnError)
	flags.SetOutput(stderr)
	clientID := flags.String("client-id", "devicegate-check", "device client the check signs in as; list it in DEVICEGATE_CLIENTS (a public client is enough)")
	secretEnv := flags.String("client-secret-env", "", "name of an environment variable holding the check client's secret, if it is confidential")
	timeout := flags.Duration("timeout", 20*time.Second, "time limit for each request")
	showVersion := flags.Bool("version", false, "print the version and exit")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: devicegate-check [flags] URL\n\nProbes a devicegate deployment end to end and explains each failure.\n\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.Line("devicegate-check"))
		return 0
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return 2
	}
	base, err := url.Parse(strings.TrimRight(flags.Arg(0), "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" || (base.Path != "" && base.Path != "/") {
		fmt.Fprintf(stderr, "devicegate-check: %q is not the site's address (https://host, no path)\n", flags.Arg(0))
		return 2
	}
	base.Path = ""
	c := newChecker(base, *clientID, *timeout, stdout)
	if *secretEnv != "" {
		if c.clientSecret = getenv(*secretEnv); c.clientSecret == "" {
			fmt.Fprintf(stderr, "devicegate-check: %s is empty\n", *secretEnv)
			return 2
		}
	}
	if !c.run(ctx) {
		return 1
	}
	return 0
}

// problem is a failed check: what was seen, what it most likely means, and
// the section of docs/DEPLOY.md that says what to do.
type problem struct {
	seen, cause, anchor string
}

func (p *problem) Error() string { return p.seen }

func fail(anchor, cause, format string, a ...any) *problem {
	return &problem{seen: fmt.Sprintf(format, a...), cause: cause, anchor: anchor}
}

type checker struct {
	base         *url.URL
	site         string // base without a trailing slash
	clientID     string
	clientSecret string
	http         *http.Client
	out          io.Writer
	failed       int

	// What earlier steps learned, for later ones.
	metadata     map[string]any
	userCode     string
	confirm      *http.Response
	csrf         string
	providerURL  *url.URL
	callbackURL  *url.URL
	apiReachable bool
	clientAddr   string // the address /api/health says rate limits count us under
}

func newChecker(base *url.URL, clientID string, timeout time.Duration, out io.Writer) *checker {
	jar, _ := cookiejar.New(nil)
	return &checker{
		base: base, site: base.String(), clientID: clientID, out: out,
		http: &http.Client{
			Timeout: timeout,
			Jar:     jar,
			// Redirects are what is checked, never followed: the provider
			// is not contacted.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (c *checker) run(ctx context.Context) bool {
	fmt.Fprintf(c.out, "devicegate-check %s\n", c.site)
	steps := []struct {
		name  string
		needs func() bool
		fn    func(context.Context) (string, error)
		note  bool // reports what the platform does; never fails the check
	}{
		{"api health", nil, c.health, false},
		{"client address not spoofable", func() bool { return c.clientAddr != "" }, c.forwardedFor, false},
		{"metadata", func() bool { return c.apiReachable }, c.checkMetadata, false},
		{"/.well-known rewrite", func() bool { return c.apiReachable }, c.wellKnown, false},
		{"chunked form", func() bool { return c.apiReachable }, c.chunkedForm, true},
		{"/device page", nil, c.devicePage, false},
		{"/devices page", func() bool { return c.apiReachable }, c.devicesPage, false},
		{"device authorization", func() bool { return c.metadata != nil }, c.authorize, false},
		{"confirmation page", func() bool { return c.userCode != "" }, c.confirmation, false},
		{"allow to the provider", func() bool { return c.csrf != "" }, c.allow, false},
		{"callback refuses a foreign state", func() bool { return c.callbackURL != nil }, c.callback, false},
	}
	for _, s := range steps {
		if s.needs != nil && !s.needs() {
			fmt.Fprintf(c.out, "skip  %-34s needs an earlier check to pass\n", s.name)
			continue
		}
		detail, err := s.fn(ctx)
		if s.note {
			fmt.Fprintf(c.out, "note  %-34s %s\n", s.name, detail)
			continue
		}
		if err == nil {
			fmt.Fprintf(c.out, "ok    %-34s %s\n", s.name, detail)
			continue
		}
		c.failed++
		fmt.Fprintf(c.out, "FAIL  %-34s %s\n", s.name, err)
		var p *problem
		if errors.As(err, &p) {
			fmt.Fprintf(c.out, "      diagnosis: %s\n      see %s%s\n", p.cause, docs, p.anchor)
		}
	}
	if c.failed > 0 {
		fmt.Fprintf(c.out, "devicegate-check: %d check(s) failed\n", c.failed)
		return false
	}
	fmt.Fprintf(c.out, "devicegate-check: all checks passed (the check's device code is left to expire)\n")
	return true
}

// do sends a request and reads the answer (at most 1 MiB).
func (c *checker) do(ctx context.Context, method, target string, form url.Values, header http.Header) (*http.Response, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, c.unreachable(target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, c.unreachable(target, err)
	}
	return resp, b, nil
}

func (c *checker) unreachable(target string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return fail("site-unreachable", "the host name does not resolve: the URL is mistyped, or the site (or its custom domain's DNS record) does not exist yet", "%s: %v", target, dnsErr)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fail("site-unreachable", "no answer in time: the site is unreachable from here, or a cold start took longer than -timeout", "%s: %v", target, err)
	}
	return fail("site-unreachable", "the site could not be reached: check the URL (https://, host name) and that the deployment finished", "%s: %v", target, err)
}

// notDevicegate explains an /api answer that did not come from the handler.
func (c *checker) notDevicegate(path string, resp *http.Response, body []byte) error {
	text := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(text, "Function host is not running"):
		return fail("handler-did-not-start", "the handler did not start: the Functions host runs but devicegate's binary is missing, not executable, crashed on start (a configuration error) or is built for the wrong platform; its own message is in Application Insights",
			"%s: %d %s", path, resp.StatusCode, oneLine(text))
	case resp.StatusCode == http.StatusNotFound:
		return fail("no-api", "the site has no API: the deployment did not upload dist/api (api_location), or this address is not devicegate",
			"%s: 404", path)
	case resp.StatusCode >= 500:
		return fail("handler-did-not-start", "the API failed before devicegate answered: the handler is not running or crashed",
			"%s: %d %s", path, resp.StatusCode, oneLine(text))
	}
	return fail("not-devicegate", "something other than devicegate's handler answered (no security headers): a proxy or an old deployment",
		"%s: %d %s", path, resp.StatusCode, oneLine(text))
}

func (c *checker) health(ctx context.Context) (string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, c.site+"/api/health", nil, nil)
	if err != nil {
		return "", err
	}
	var h struct{ Status, Store, Client string }
	isJSON := json.Unmarshal(body, &h) == nil && h.Status != ""
	if !isJSON || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		return "", c.notDevicegate("/api/health", resp, body)
	}
	c.apiReachable = true
	if resp.StatusCode != http.StatusOK || h.Status != "ok" {
		return "", fail("store-unreachable", "the handler runs but cannot reach its store: check the DEVICEGATE_COSMOS_* settings, the account's firewall and that the database and container exist",
			"/api/health: %d, status %q, store %q", resp.StatusCode, h.Status, h.Store)
	}
	c.clientAddr = h.Client
	if h.Client == "" {
		return "the handler runs, store " + h.Store, nil
	}
	return fmt.Sprintf("the handler runs, store %s, counts this caller as %s", h.Store, h.Client), nil
}

// spoofedAddress is from TEST-NET-2 (RFC 5737): never a real caller.
const spoofedAddress = "198.51.100.23"

// forwardedFor sends X-Forwarded-For with an address of its choosing, as an
// attacker dodging the rate limits would, and compares the address the
// handler counts it under with the one it reported without the header. A
// front that appends the real address leaves a right-to-left reader
// unmoved; one that passes the header through, or a hop count set too low,
// lets the caller pick its address.
func (c *checker) forwardedFor(ctx context.Context) (string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, c.site+"/api/health", nil, http.Header{"X-Forwarded-For": {spoofedAddress}})
	if err != nil {
		return "", err
	}
	var h struct{ Client string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil {
		return "", c.notDevicegate("/api/health", resp, body)
	}
	if h.Client != c.clientAddr {
		return "", fail("forwarded-for-spoofable", "a caller can choose the address rate limits count it under: DEVICEGATE_TRUSTED_PROXY is true but the front in this deployment does not append the real address to X-Forwarded-For (or DEVICEGATE_TRUSTED_PROXY_HOPS counts more fronts than append to it)",
			"with X-Forwarded-For: %s the caller is counted as %s instead of %s", spoofedAddress, h.Client, c.clientAddr)
	}
	return "a forged X-Forwarded-For changes nothing", nil
}

func (c *checker) wrongURL(format string, a ...any) error {
	return fail("wrong-public-url", "DEVICEGATE_PUBLIC_URL is not the address people use: set it to "+c.site+" (after adding a custom domain too) and redeploy", format, a...)
}

func (c *checker) checkMetadata(ctx context.Context) (string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, c.site+"/api/metadata", nil, nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", c.notDevicegate("/api/metadata", resp, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fail("not-devicegate", "the metadata is not JSON: something other than devicegate answered", "/api/metadata: %v", err)
	}
	if iss, _ := m["issuer"].(string); iss != c.site {
		return "", c.wrongURL("issuer is %q, not %q", iss, c.site)
	}
	for _, k := range []string{"device_authorization_endpoint", "token_endpoint"} {
		v, _ := m[k].(string)
		if !strings.HasPrefix(v, c.site+"/api/") {
			return "", c.wrongURL("%s is %q, not under %s/api/", k, v, c.site)
		}
	}
	// The token endpoint is reachable and speaks OAuth: an empty request is
	// an RFC 6749 §5.2 error, never stored by a cache.
	tok := m["token_endpoint"].(string)
	resp, body, err = c.do(ctx, http.MethodPost, tok, url.Values{}, nil)
	if err != nil {
		return "", err
	}
	var oe struct{ Error string }
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(body, &oe) != nil || oe.Error == "" {
		return "", c.notDevicegate(tok, resp, body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		return "", fail("not-devicegate", "token answers must carry Cache-Control: no-store (RFC 6749 §5.1); something between devicegate and the client rewrote them", "token endpoint: Cache-Control %q", cc)
	}
	c.metadata = m
	return "issuer " + c.site + ", endpoints reachable", nil
}

func (c *checker) wellKnown(ctx context.Context) (string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, c.site+"/.well-known/oauth-authorization-server", nil, nil)
	if err != nil {
		return "", err
	}
	var m struct{ Issuer string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil {
		return "", fail("well-known-rewrite", "the rewrite of /.well-known/oauth-authorization-server to /api/metadata is missing: staticwebapp.config.json did not reach the site (it must be in app_location, dist/site)",
			"/.well-known/oauth-authorization-server: %d", resp.StatusCode)
	}
	if m.Issuer == "" {
		return "", fail("well-known-rewrite", "/.well-known/oauth-authorization-server answered JSON without an issuer: it is not rewritten to devicegate's metadata", "/.well-known/oauth-authorization-server: no issuer")
	}
	// Whether the issuer is right is the metadata check's business.
	return "answers the metadata", nil
}

// emptyBodyPrefix starts devicegate's answer to a POST whose body arrived
// empty (api/internal/httpapi errEmptyBody).
const emptyBodyPrefix = "the request body is empty"

// unsizedReader hides a body's length, so Go's client sends it chunked.
type unsizedReader struct{ io.Reader }

// chunkedForm finds out what this deployment does with a form sent chunked
// (without Content-Length), as a device client sends it whose body length
// its HTTP library does not know, and says whether device clients must send
// Content-Length. Three answers are the platform's known ways
// (docs/DEPLOY.md, "Functions host mode"): devicegate reads the form (a
// proxying host, Flex Consumption), devicegate answers that the body
// arrived empty, or the forwarding Functions host (Static Web Apps) refuses
// it with an empty 500. It is a note, not a check: a front answering in yet
// another way is reported, but does not fail a deployment whose own clients
// send Content-Length.
func (c *checker) chunkedForm(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.site+"/api/token",
		unsizedReader{strings.NewReader(url.Values{"grant_type": {"devicegate-check"}}.Encode())})
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return "no answer (" + err.Error() + "): device clients must send Content-Length", nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	switch {
	case resp.StatusCode == http.StatusBadRequest && e.Error == "unsupported_grant_type":
		return "reaches devicegate whole: device clients may send chunked bodies", nil
	case resp.StatusCode == http.StatusBadRequest && e.Error == "invalid_request" && strings.HasPrefix(e.Description, emptyBodyPrefix):
		return "arrives empty: device clients must send Content-Length (docs/DEPLOY.md#functions-host-mode)", nil
	case resp.StatusCode == http.StatusInternalServerError && len(body) == 0:
		return "refused by the Functions host (500): device clients must send Content-Length (docs/DEPLOY.md#functions-host-mode)", nil
	}
	return fmt.Sprintf("answered %d, as neither devicegate nor the Functions host does: device clients must send Content-Length (docs/DEPLOY.md#functions-host-mode)", resp.StatusCode), nil
}

// devicesPage checks that /devices, the person's own device list, reaches
// the API: on Static Web Apps only the route in staticwebapp.config.json
// rewrites it to /api/devices.
func (c *checker) devicesPage(ctx context.Context) (string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, c.site+"/devices", nil, nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Your devices") {
		return "", fail("devices-rewrite", "/devices does not reach devicegate: the /devices route of staticwebapp.config.json (a rewrite to /api/devices) did not reach the site, or the API lacks the devices function",
			"/devices: %d", resp.StatusCode)
	}
	return "rewritten to the API", nil
}

func (c *checker) devicePage(ctx context.Context) (string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, c.site+"/device", nil, nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `action="/api/verify"`) {
		return "", fail("site-missing", "the code-entry page is not served: the site (dist/site) was not deployed, or staticwebapp.config.json lacks the /device rewrite to /api/device",
			"/device: %d", resp.StatusCode)
	}
	h := resp.Header
	var missing []string
	if !strings.Contains(strings.Join(h.Values("Content-Security-Policy"), ","), "default-src") {
		missing = append(missing, "Content-Security-Policy")
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		missing = append(missing, "X-Content-Type-Options")
	}
	if !strings.Contains(strings.Join(h.Values("Content-Security-Policy"), ","), "frame-ancestors 'none'") && h.Get("X-Frame-Options") != "DENY" {
		missing = append(missing, "frame-ancestors/X-Frame-Options")
	}
	if c.base.Scheme == "https" && h.Get("Strict-Transport-Security") == "" {
		missing = append(missing, "Strict-Transport-Security")
	}
	if len(missing) > 0 {
		return "", fail("page-headers", "the code-entry page lacks security headers: the handler sets them on /api/device; something in front strips them", "/device lacks %s", strings.Join(missing, ", "))
	}
	return "served with its security headers", nil
}

func (c *checker) authorize(ctx context.Context) (string, error) {
	form := url.Values{"client_id": {c.clientID}}
	if c.clientSecret != "" {
		form.Set("client_secret", c.clientSecret) // client_secret_post: SWA overwrites Authorization on /api
	}
	endpoint := c.metadata["device_authorization_endpoint"].(string)
	resp, body, err := c.do(ctx, http.MethodPost, endpoint, form, nil)
	if err != nil {
		return "", err
	}
	var a struct {
		Error                   string `json:"error"`
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURI         string `json:"verification_uri"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		ExpiresIn               int    `json:"expires_in"`
		Interval                int    `json:"interval"`
	}
	if json.Unmarshal(body, &a) != nil {
		return "", c.notDevicegate(endpoint, resp, body)
	}
	switch {
	case a.Error == "invalid_client":
		return "", fail("check-client", fmt.Sprintf("the deployment does not know the client %q: add {\"client_id\":%q,\"name\":\"Deployment check\"} to DEVICEGATE_CLIENTS (or pass -client-id and, for a confidential client, -client-secret-env)", c.clientID, c.clientID),
			"device authorization: invalid_client")
	case resp.StatusCode == http.StatusTooManyRequests:
		return "", fail("rate-limited", "the authorize rate limit for this address is exhausted; wait and run the check again", "device authorization: 429")
	case resp.StatusCode != http.StatusOK || a.DeviceCode == "" || a.UserCode == "":
		return "", fail("unexpected-answer", "devicegate refused the check's device authorization; the message above says why", "device authorization: %d %s", resp.StatusCode, a.Error)
	case a.ExpiresIn <= 0 || a.Interval <= 0:
		return "", fail("unexpected-answer", "device clients such as the GitHub CLI's library need expires_in and interval", "device authorization: expires_in %d, interval %d", a.ExpiresIn, a.Interval)
	case a.VerificationURI != c.site+"/device":
		return "", c.wrongURL("verification_uri is %q, not %s/device", a.VerificationURI, c.site)
	}
	c.userCode = a.UserCode
	return fmt.Sprintf("a user code for %q, valid %d s", c.clientID, a.ExpiresIn), nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *checker) confirmation(ctx context.Context) (string, error) {
	resp, body, err := c.do(ctx, http.MethodPost, c.site+"/api/verify", url.Values{"user_code": {c.userCode}},
		http.Header{"Origin": {c.site}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode == http.StatusSeeOther {
		// Post/Redirect/Get, as devicegate answers a typed code since its
		// entry form sends the code by GET: follow it on this site only.
		loc, lerr := resp.Location()
		if lerr != nil || !strings.HasPrefix(loc.String(), c.site+"/api/verify?") {
			return "", fail("unexpected-answer", "the verification page sent the typed code somewhere else than its own confirmation", "/api/verify: 303 to %q", resp.Header.Get("Location"))
		}
		if resp, body, err = c.do(ctx, http.MethodGet, loc.String(), nil, nil); err != nil {
			return "", err
		}
	}
	m := csrfField.FindSubmatch(body)
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return "", c.wrongURL("/api/verify refused the form from %s (403): the page's origin is not the public URL", c.site)
	case resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(string(body), `value="allow"`):
		return "", fail("unexpected-answer", "the verification page did not show the confirmation for a fresh code", "/api/verify: %d", resp.StatusCode)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/html" {
		return "", fail("not-devicegate", "the confirmation page is not HTML", "/api/verify: Content-Type %q", resp.Header.Get("Content-Type"))
	}
	c.confirm, c.csrf = resp, html.UnescapeString(string(m[1]))
	return "shows the confirmation for the code", nil
}

func (c *checker) allow(ctx context.Context) (string, error) {
	resp, _, err := c.do(ctx, http.MethodPost, c.site+"/api/verify",
		url.Values{"user_code": {c.userCode}, "csrf": {c.csrf}, "action": {"allow"}}, http.Header{"Origin": {c.site}})
	if err != nil {
		return "", err
	}
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound || err != nil {
		return "", fail("unexpected-answer", "Allow did not send the browser to the provider", "/api/verify allow: %d", resp.StatusCode)
	}
	c.providerURL = loc
	if ok, blocking := formActionAllows(c.confirm.Header, c.base, loc); !ok {
		return "", fail("csp-blocks-provider", "the browser would refuse to follow Allow: a Content-Security-Policy on the confirmation page does not list the provider. If it comes from staticwebapp.config.json's globalHeaders, remove the provider-specific form-action there; devicegate sets the right one itself",
			"%s blocks %s://%s", blocking, loc.Scheme, loc.Host)
	}
	redirect, err := url.Parse(loc.Query().Get("redirect_uri"))
	if err != nil || !strings.HasPrefix(redirect.String(), c.site+"/api/callback") {
		return "", c.wrongURL("the provider is told to return to %q, not under %s/api/callback (register the right redirect URI at the provider too)", loc.Query().Get("redirect_uri"), c.site)
	}
	c.callbackURL = redirect
	return fmt.Sprintf("redirects to %s://%s, which the page's CSP allows", loc.Scheme, loc.Host), nil
}

func (c *checker) callback(ctx context.Context) (string, error) {
	u := *c.callbackURL
	q := u.Query()
	q.Set("state", rand.Text())
	q.Set("code", "devicegate-check")
	u.RawQuery = q.Encode()
	resp, body, err := c.do(ctx, http.MethodGet, u.String(), nil, nil)
	if err != nil {
		return "", err
	}
	switch {
	case resp.StatusCode >= 500:
		return "", c.notDevicegate(c.callbackURL.Path, resp, body)
	case resp.StatusCode < 400:
		return "", fail("callback-accepts-foreign-state", "the callback accepted a state that does not belong to this browser: this deployment is not devicegate as released, or its state check is broken — do not use it",
			"%s: %d for a foreign state", c.callbackURL.Path, resp.StatusCode)
	}
	return fmt.Sprintf("%d, nothing exchanged", resp.StatusCode), nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
