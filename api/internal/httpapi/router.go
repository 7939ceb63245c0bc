// Package httpapi is devicegate's HTTP surface: the routes, and thin
// adapters that parse a request, ask the protocol core (package deviceflow)
// and write the answer. It never touches the store directly.
//
// Handlers return errors; one function per kind of answer writes them: JSON
// RFC 6749 errors for the API, friendly pages for people. An error no
// handler anticipated is logged with its detail and answered without it.
package httpapi

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/devicegate/devicegate/api/i18n"
	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/pages"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// Upstream is the provider side as the handlers need it; *upstream.Provider
// implements it, and tests substitute their own.
type Upstream interface {
	DisplayName() string
	AuthCodeURL(state, verifier string, scopes []string) string
	Exchange(ctx context.Context, code, verifier string) (*upstream.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (*upstream.Tokens, error)
	// The WithSecret forms authenticate with the secret a passthrough
	// device presented, for that one request.
	ExchangeWithSecret(ctx context.Context, secret, code, verifier string) (*upstream.Tokens, error)
	RefreshWithSecret(ctx context.Context, secret, refreshToken string) (*upstream.Tokens, error)
	// Identity names devicegate's app at the provider, for refresh-token
	// bindings.
	Identity() string
	// RedirectURL is this provider's own callback URL.
	RedirectURL() string
	// CheckIssuer applies RFC 9207 to an authorization response's iss.
	CheckIssuer(iss string) bool
	// CanRevoke says the provider has an RFC 7009 revocation endpoint;
	// Revoke and RevokeWithSecret (passthrough) use it.
	CanRevoke() bool
	Revoke(ctx context.Context, refreshToken string) error
	RevokeWithSecret(ctx context.Context, secret, refreshToken string) error
	// CanNameAccount says the provider names the account a token belongs
	// to; Account asks it, with a token of AccountScopes (the person's
	// own device list, /devices).
	CanNameAccount() bool
	AccountScopes() []string
	Account(ctx context.Context, accessToken string) (string, error)
}

// Options wires the handlers. All fields but Frontend, Limiter and the
// rate rules are required; of Upstream and Upstreams, at least one.
type Options struct {
	Service *deviceflow.Service
	// Upstream is the default provider: the one for every client that has
	// no entry in Upstreams.
	Upstream Upstream
	// Upstreams holds, by client_id, the providers of clients that sign in
	// somewhere else than the default.
	Upstreams map[string]Upstream
	Pages     *pages.Renderer
	// Clients finds a device client by client_id.
	Clients func(id string) (*config.Client, bool)
	// PublicURL is the base of every URL devicegate hands out.
	PublicURL string
	// Frontend holds the static pages; nil serves none (Azure serves them
	// from Static Web Apps).
	Frontend fs.FS
	Logger   *slog.Logger
	Now      func() time.Time
	Rand     io.Reader

	// Limiter applies the rate limits below; nil applies none.
	Limiter       *ratelimit.Limiter
	RateAuthorize ratelimit.Rule // device authorizations per client IP
	// RateVerify limits every request of the person's side that names a
	// user code (showing it, Allow, Deny), per client IP.
	RateVerify ratelimit.Rule
	// RateRefresh and RateRefreshClient limit refresh_token grants per
	// client IP and per device client.
	RateRefresh       ratelimit.Rule
	RateRefreshClient ratelimit.Rule
	// RateClientAuth and RateClientAuthClient limit failed client
	// authentications (a wrong secret) per client IP — in each network
	// of it — and per device client; over either, the next attempts are
	// refused before their secret is compared.
	RateClientAuth       ratelimit.Rule
	RateClientAuthClient ratelimit.Rule
	// RatePollMisses limits polls naming an unknown device code (or one
	// of another client) per client IP; over it, polls are refused before
	// the store is read.
	RatePollMisses ratelimit.Rule
	// RateCodeMisses is the deployment-wide ceiling on user codes that
	// matched nothing; over it, every address is held to
	// SlowedVerify requests naming a code per window, and it is logged
	// as an error.
	RateCodeMisses ratelimit.Rule
	// ProxyHops is how many trusted proxies in front append to
	// X-Forwarded-For (see ratelimit.ClientIP); 0 ignores the header.
	ProxyHops int
}

// Route is one API endpoint. The Azure packaging checks its function.json
// files against this table, so the two cannot drift apart.
type Route struct {
	Name    string // the Azure function's name
	Path    string
	Methods []string
	// Tail names an optional last path segment the route also takes
	// (Path + "/{Tail}"); its function.json route ends in "/{Tail?}".
	Tail string
}

// Routes lists the API endpoints.
func Routes() []Route {
	return []Route{
		{"authorize", "/api/authorize", []string{http.MethodPost}, ""},
		{"token", "/api/token", []string{http.MethodPost}, ""},
		{"revoke", "/api/revoke", []string{http.MethodPost}, ""},
		{"verify", "/api/verify", []string{http.MethodGet, http.MethodPost}, ""},
		// The code-entry page, rendered in the person's language: Static
		// Web Apps rewrites /device here (staticwebapp.config.json).
		{"device", "/api/device", []string{http.MethodGet}, ""},
		// Each provider of a deployment has its own callback,
		// /api/callback/{provider}; one provider alone keeps /api/callback.
		{"callback", "/api/callback", []string{http.MethodGet}, "provider"},
		{"metadata", "/api/metadata", []string{http.MethodGet}, ""},
		{"health", "/api/health", []string{http.MethodGet}, ""},
		// The person's own device list; /devices is rewritten to it.
		{"devices", "/api/devices", []string{http.MethodGet, http.MethodPost}, ""},
		// The start page and the not-found page, in the person's
		// language: Static Web Apps rewrites / to home and sends every
		// address that holds nothing to notfound (navigationFallback).
		{"home", "/api/home", []string{http.MethodGet}, ""},
		{"notfound", "/api/notfound", []string{http.MethodGet}, ""},
	}
}

type server struct {
	Options
	secure       bool   // PublicURL is https
	publicOrigin string // scheme://host[:port]
	pageCSP      string
}

// New returns the HTTP handler serving the API and, when Frontend is set,
// the static pages.
func New(o Options) (http.Handler, error) {
	if o.Service == nil || (o.Upstream == nil && len(o.Upstreams) == 0) || o.Pages == nil || o.Clients == nil || o.Logger == nil || o.Now == nil || o.Rand == nil {
		return nil, errors.New("httpapi: Service, Upstream (or Upstreams), Pages, Clients, Logger, Now and Rand are required")
	}
	pu, err := url.Parse(o.PublicURL)
	if err != nil || pu.Host == "" {
		return nil, errors.New("httpapi: PublicURL must be an absolute URL")
	}
	s := &server{
		Options:      o,
		secure:       pu.Scheme == "https",
		publicOrigin: config.NormalizeOrigin(pu.Scheme + "://" + pu.Host),
	}
	s.pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"form-action 'self'" + upstreamOrigins(o.Upstream, o.Upstreams) + "; frame-ancestors 'none'; base-uri 'none'"

	r := mux.NewRouter()
	handlers := map[string]http.Handler{
		"authorize": s.api(s.authorize),
		"token":     s.api(s.token),
		"revoke":    s.api(s.revoke),
		"verify":    s.page(s.verify),
		"device":    s.page(s.entry),
		"callback":  s.page(s.callback),
		"metadata":  s.api(s.metadata),
		"health":    s.api(s.health),
		"devices":   s.page(s.devices),
		"home":      s.page(s.home),
		"notfound":  s.page(s.notFound),
	}
	// The token endpoint comes first: gorilla/mux tries routes in order,
	// and devices' polls are most of the traffic.
	routes := Routes()
	slices.SortStableFunc(routes, func(a, b Route) int { return boolRank(a.Name != "token") - boolRank(b.Name != "token") })
	for _, rt := range routes {
		paths := []string{rt.Path}
		if rt.Tail != "" {
			paths = append(paths, rt.Path+"/{"+rt.Tail+"}")
		}
		for _, p := range paths {
			r.Handle(p, handlers[rt.Name]).Methods(rt.Methods...)
			r.Handle(p, methodNotAllowed(rt.Methods))
		}
	}
	// /device is the handler's own page wherever devicegate runs, so the
	// Accept-Language header and the language cookie are honoured without
	// any script.
	for p, h := range map[string]http.Handler{"/device": s.page(s.entry), "/device/": s.page(s.entry), "/": s.page(s.home)} {
		r.Handle(p, h).Methods(http.MethodGet, http.MethodHead)
		r.Handle(p, methodNotAllowed([]string{http.MethodGet, http.MethodHead}))
	}
	r.Handle("/.well-known/oauth-authorization-server", s.api(s.metadata)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/.well-known/oauth-authorization-server", methodNotAllowed([]string{http.MethodGet, http.MethodHead}))
	// /devices is the address people are given; Static Web Apps rewrites
	// it to /api/devices (staticwebapp.config.json), the local server
	// serves it here.
	r.Handle("/devices", s.page(s.devices)).Methods(http.MethodGet, http.MethodPost)
	r.PathPrefix("/api/").Handler(s.api(func(http.ResponseWriter, *http.Request) error {
		return oauth.Error{Code: "invalid_request", Description: "no such endpoint", Status: http.StatusNotFound}
	}))
	if o.Frontend != nil {
		r.PathPrefix("/").Handler(newStatic(o.Frontend, s.page(s.notFound)))
	} else {
		r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "not found", http.StatusNotFound)
		})
	}
	return s.headers(s.logRequests(routed{mux: r, token: handlers["token"]})), nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// routed dispatches through gorilla/mux without the two request copies its
// ServeHTTP makes on every request (WithContext for the route variables,
// again for the current route): no handler here reads mux.Vars or
// mux.CurrentRoute. The route is still mux's choice (Router.Match). What
// mux's ServeHTTP does besides, routed leaves to it: a path that is not in
// clean form (mux answers a redirect to the clean one), no match, a method
// mismatch or not-found answer.
//
// The RouteMatch, with the Vars map mux fills in, is recycled: both are
// mux's to write during Match and nobody's to read after it.
//
// A poll — POST /api/token, most of the traffic — goes to the token
// handler without asking mux (Match tries a regular expression per
// route): it is mux's first route, POST on exactly that path, with no
// host, scheme or header condition and no middleware, so mux would choose
// it for every such request (the path is clean; mux matches r.URL.Path).
type routed struct {
	mux   *mux.Router
	token http.Handler // the token route's handler
}

var routeMatches = sync.Pool{New: func() any { return &mux.RouteMatch{Vars: map[string]string{}} }}

func (rt routed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/api/token" {
		rt.token.ServeHTTP(w, r)
		return
	}
	m := routeMatches.Get().(*mux.RouteMatch)
	var h http.Handler
	if cleanPath(r.URL.Path) && rt.mux.Match(r, m) && m.MatchErr == nil {
		h = m.Handler
	}
	vars := m.Vars
	clear(vars)
	*m = mux.RouteMatch{Vars: vars}
	routeMatches.Put(m)
	if h == nil {
		h = rt.mux
	}
	h.ServeHTTP(w, r)
}

// cleanPath reports, conservatively, whether gorilla/mux would serve p as
// it is rather than redirect to a cleaned form: p starts with a slash and
// has no empty, "." or ".." segment, so path.Clean would leave it alone
// (mux keeps a trailing slash). A path with any "/." is left to mux even
// when it is clean (/.well-known/…); mux then does what it always did.
func cleanPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.Contains(p, "//") && !strings.Contains(p, "/.")
}

// upstreamOrigins returns " scheme://host" of each upstream's authorize
// URL, sorted and without repeats, for the form-action directive: Chrome
// applies form-action to the redirect that follows the confirmation form,
// so every provider a client may be sent to must be listed — and no other.
func upstreamOrigins(def Upstream, byClient map[string]Upstream) string {
	seen := map[string]bool{}
	add := func(u Upstream) {
		if u == nil {
			return
		}
		if p, err := url.Parse(u.AuthCodeURL("", "", nil)); err == nil && p.Host != "" {
			seen[p.Scheme+"://"+p.Host] = true
		}
	}
	add(def)
	for _, u := range byClient {
		add(u)
	}
	if len(seen) == 0 {
		return ""
	}
	return " " + strings.Join(slices.Sorted(maps.Keys(seen)), " ")
}

// upstreamFor is the provider clientID signs in with. Configuration
// validation guarantees every configured client has one; a record whose
// client was since removed from the configuration may not.
func (s *server) upstreamFor(clientID string) (Upstream, error) {
	if u, ok := s.Upstreams[clientID]; ok {
		return u, nil
	}
	if s.Upstream != nil {
		return s.Upstream, nil
	}
	return nil, errNoUpstream
}

// errNoUpstream: a record's client no longer has a provider configured.
var errNoUpstream = errors.New("httpapi: no upstream configured for this client")

// methodNotAllowed answers 405 with the Allow header RFC 9110 §15.5.6
// requires; gorilla/mux alone sends neither.
func methodNotAllowed(methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		oauth.WriteError(w, oauth.Error{Code: "invalid_request", Description: "method not allowed; use " + allow, Status: http.StatusMethodNotAllowed})
	})
}

// headers sets the security headers every answer carries. Static Web Apps'
// globalHeaders do not reach API answers, so the handler sets its own.
func (s *server) headers(next http.Handler) http.Handler {
	// The values are built once and shared by every answer rather than
	// allocated per request (the keys are in canonical form). Each slice
	// has len == cap, so a later Add appends to a copy; nothing writes
	// into a header value.
	one := func(v string) []string { return []string{v} }
	var (
		apiCSP   = one("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
		pageCSP  = one(s.pageCSP)
		nosniff  = one("nosniff")
		noRef    = one("no-referrer")
		deny     = one("DENY")
		coop     = one("same-origin")
		perms    = one("camera=(), microphone=(), geolocation=(), interest-cohort=()")
		hsts     = one("max-age=63072000; includeSubDomains")
		isSecure = s.secure
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		csp := pageCSP
		if strings.HasPrefix(r.URL.Path, "/api/") && !pagePaths[r.URL.Path] && !isCallback(r.URL.Path) {
			csp = apiCSP
		}
		h["Content-Security-Policy"] = csp
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noRef
		h["X-Frame-Options"] = deny
		h["Cross-Origin-Opener-Policy"] = coop
		h["Permissions-Policy"] = perms
		if isSecure {
			h["Strict-Transport-Security"] = hsts
		}
		next.ServeHTTP(w, r)
	})
}

// pagePaths are the API paths that answer with pages for people, which
// get the pages' Content-Security-Policy (the callback's paths too).
var pagePaths = map[string]bool{
	"/api/verify": true, "/api/device": true, "/api/devices": true, "/api/home": true, "/api/notfound": true,
}

// allow applies a rate limit to the request's client address, counted in
// each of the networks it belongs to (ratelimit.Prefixes).
func (s *server) allow(r *http.Request, name string, rule ratelimit.Rule) (bool, time.Duration) {
	return s.Limiter.AllowAddr(r.Context(), name, rule, s.clientIP(r))
}

// clientIP is the address the request is counted under.
func (s *server) clientIP(r *http.Request) netip.Addr {
	return ratelimit.ClientIP(r, s.ProxyHops)
}

// isCallback reports whether path is /api/callback or one provider's
// /api/callback/{provider}.
func isCallback(path string) bool {
	rest, ok := strings.CutPrefix(path, "/api/callback")
	return ok && (rest == "" || strings.HasPrefix(rest, "/") && !strings.Contains(rest[1:], "/"))
}

// retryAfter writes the Retry-After header in whole seconds, rounded up.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// logRequests logs one line per request. It logs the path only: queries and
// bodies carry user codes, authorization codes and state, which never reach
// a log.
func (s *server) logRequests(next http.Handler) http.Handler {
	fast, _ := s.Logger.Handler().(requestLogger)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recorders.Get().(*statusRecorder)
		*rec = statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		*rec = statusRecorder{} // holds nothing of this request while pooled
		recorders.Put(rec)
		path := r.URL.Path
		if len(path) > 100 {
			path = path[:100] + "…"
		}
		if fast != nil {
			// One clock reading serves as the line's time and the end of
			// its duration.
			now := time.Now()
			if fast.LogRequest(r.Context(), now, r.Method, path, status, now.Sub(start)) {
				return
			}
		}
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)))
	})
}

// requestLogger is a log handler that writes logRequests' line itself, as
// slog.Logger.LogAttrs would through it (serve.Logger's handler does: see
// its LogRequest). It reports false when it leaves the line to slog.
type requestLogger interface {
	LogRequest(ctx context.Context, t time.Time, method, path string, status int, d time.Duration) bool
}

// recorders recycles logRequests' statusRecorders: a handler is done
// with its ResponseWriter when ServeHTTP returns (net/http's rule too).
var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

// api adapts a JSON handler: an oauth.Error is written as is; anything else
// is a fault on our side, logged and answered as temporarily_unavailable
// (the store or a dependency failed; retrying may work).
func (s *server) api(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		// Most errors are an oauth.Error as is (a poll's pending answer);
		// errors.As would move oe to the heap for every one of them.
		if oe, ok := err.(oauth.Error); ok {
			oauth.WriteError(w, oe)
			return
		}
		var oe oauth.Error
		switch {
		case errors.As(err, &oe):
			oauth.WriteError(w, oe)
		default:
			s.Logger.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "5")
			oauth.WriteError(w, oauth.ErrTemporarilyUnavailable.WithDescription("the service is temporarily unable to answer; try again shortly"))
		}
	})
}

// pageError is an error a handler means the person to see as a page.
type pageError struct {
	status int
	kind   pages.ResultKind
	msg    pages.Text
	retry  time.Duration // for ResultTooMany
}

func (e pageError) Error() string { return "page: " + e.msg.Key }

// page adapts a handler for people: a pageError becomes a result page; any
// other error is logged and shown as a generic error page.
func (s *server) page(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang, chosen := i18n.Default.ForRequest(r, s.cookieName(langCookie))
		if chosen {
			// A language picked from the switcher is remembered.
			s.setLangCookie(w, lang.Tag)
		}
		r = r.WithContext(context.WithValue(r.Context(), langKey{}, lang))
		if showsFlash(r) {
			// The page a form's POST redirected to (POST/redirect/GET).
			if f, ok := s.takeFlash(w, r); ok {
				if err := s.showFlash(w, r, f); err != nil {
					s.Logger.ErrorContext(r.Context(), "rendering a form's outcome", "err", err)
				}
				return
			}
		}
		err := h(w, r)
		if err == nil {
			return
		}
		var pe pageError
		if !errors.As(err, &pe) {
			s.Logger.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
			pe = pageError{status: http.StatusServiceUnavailable, kind: pages.ResultError,
				msg: pages.Msg("result.error.temporary"), retry: 5 * time.Second}
		}
		if r.Method == http.MethodPost {
			// A form's failure is shown by the GET its 303 leads to, like
			// its success: no page in the history answers a POST.
			if err := s.redirectWithFlash(w, r, flashFor(pe)); err != nil {
				s.Logger.ErrorContext(r.Context(), "redirecting a form's outcome", "err", err)
				http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			}
			return
		}
		if pe.retry > 0 {
			retryAfter(w, pe.retry)
		}
		loc := pages.Locale{Lang: lang}
		if r.Method == http.MethodGet && r.URL.Path == "/api/verify" {
			// A page shown for a link can be shown again in another language.
			loc.Switch = "/api/verify?" + url.Values{"user_code": {r.URL.Query().Get("user_code")}}.Encode()
		}
		if err := s.Pages.Result(w, pe.status, loc, pages.ResultData{Kind: pe.kind, Message: pe.msg, RetryAfter: pe.retry}); err != nil {
			s.Logger.ErrorContext(r.Context(), "rendering result page", "err", err)
		}
	})
}

// showsFlash reports whether r is a GET of a page a form's POST redirects
// to: /api/verify without a code, or /devices.
func showsFlash(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	switch r.URL.Path {
	case "/api/verify":
		return !r.URL.Query().Has("user_code")
	case "/devices", "/api/devices":
		return true
	}
	return false
}

// langKey holds, in a page request's context, the language its pages are
// written in.
type langKey struct{}

// langOf is the language page(…) chose for r.
func langOf(r *http.Request) *i18n.Lang {
	if l, ok := r.Context().Value(langKey{}).(*i18n.Lang); ok {
		return l
	}
	return i18n.Default.Fallback()
}
