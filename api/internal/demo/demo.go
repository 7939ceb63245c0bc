// Package demo is a small OAuth 2.0 authorization server that stands in for
// Spotify when devicegate runs with -demo, so a newcomer can walk the whole
// device flow on one machine without an account anywhere.
//
// It is a real protocol peer — authorization code grant with PKCE S256
// required, exact redirect URI matching, single-use codes, refresh tokens,
// a userinfo endpoint — but it keeps everything in memory and logs in
// anyone under any name. Its pages say so in a banner. Never use it for
// anything but trying devicegate out.
package demo

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/devicegate/devicegate/api/internal/upstream"
)

// Options configures the demo provider.
type Options struct {
	// BaseURL is the public URL of the prefix it is mounted under, e.g.
	// http://127.0.0.1:8080/demo.
	BaseURL      string
	ClientID     string
	ClientSecret string
	// RedirectURI is the one registered redirect URI; it must match exactly.
	RedirectURI string
	Now         func() time.Time
	Rand        io.Reader
}

const (
	codeLifetime  = 60 * time.Second
	tokenLifetime = time.Hour
	csrfCookie    = "demo-csrf"
)

type grant struct {
	user, scope, challenge string
	expires                time.Time
	used                   bool
	issued                 []string // tokens issued for this code, revoked on reuse
}

type token struct {
	user, scope string
	expires     time.Time // zero for refresh tokens
}

// Server is the demo provider.
type Server struct {
	o    Options
	tmpl *template.Template

	mu     sync.Mutex
	codes  map[string]*grant
	access map[string]token
	fresh  map[string]token // refresh tokens
}

// New checks o and returns a Server.
func New(o Options) (*Server, error) {
	if o.BaseURL == "" || o.ClientID == "" || o.ClientSecret == "" || o.RedirectURI == "" {
		return nil, errors.New("demo: BaseURL, ClientID, ClientSecret and RedirectURI are required")
	}
	if _, err := url.Parse(o.RedirectURI); err != nil {
		return nil, errors.New("demo: RedirectURI is not a URL")
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	t, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, err
	}
	return &Server{o: o, tmpl: t, codes: map[string]*grant{}, access: map[string]token{}, fresh: map[string]token{}}, nil
}

// Preset describes the demo provider to devicegate's upstream package.
func (s *Server) Preset() upstream.Preset {
	return upstream.Preset{
		Name:          "demo",
		DisplayName:   "Demo provider",
		AuthURL:       s.o.BaseURL + "/authorize",
		TokenURL:      s.o.BaseURL + "/token",
		PKCE:          true,
		AuthStyle:     oauth2.AuthStyleInHeader,
		RedirectRules: "the demo accepts exactly devicegate's own callback",
		Scopes:        upstream.OpenIDScopes(),
		// Its userinfo names the demo user, so /devices works with it.
		AccountURL:    s.o.BaseURL + "/userinfo",
		AccountField:  "sub",
		AccountScopes: []string{"openid"},
	}
}

// Handler serves the provider's endpoints, relative to its prefix.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorizePage)
	mux.HandleFunc("POST /authorize", s.authorizeDecision)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /userinfo", s.userinfo)
	mux.HandleFunc("GET /demo.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		io.WriteString(w, css)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self' "+origin(s.o.RedirectURI)+"; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		mux.ServeHTTP(w, r)
	})
}

func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

func (s *Server) random() string {
	b := make([]byte, 24)
	if _, err := io.ReadFull(s.o.Rand, b); err != nil {
		panic("demo: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

type pageData struct {
	CSS, Action, Error string
	Scopes             []string
	Hidden             map[string]string
	CSRF, ClientID     string
}

func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	d.CSS = s.o.BaseURL + "/demo.css"
	d.Action = s.o.BaseURL + "/authorize"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = s.tmpl.Execute(w, d)
}

// checkRequest validates an authorization request (RFC 6749 §4.1.1, RFC
// 7636 §4.3). Problems with the client or redirect URI are shown, never
// redirected, so the demo cannot become an open redirector.
func (s *Server) checkRequest(q url.Values) (string, bool) {
	switch {
	case q.Get("client_id") != s.o.ClientID:
		return "Unknown client.", false
	case q.Get("redirect_uri") != s.o.RedirectURI:
		return "The redirect_uri is not registered for this client.", false
	case q.Get("response_type") != "code":
		return "Only response_type=code is supported.", false
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		return "PKCE with code_challenge_method=S256 is required.", false
	case q.Get("state") == "":
		return "A state parameter is required.", false
	}
	return "", true
}

func (s *Server) authorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if msg, ok := s.checkRequest(q); !ok {
		s.render(w, http.StatusBadRequest, pageData{Error: msg})
		return
	}
	csrf := s.random()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: csrf, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 600})
	hidden := map[string]string{}
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method"} {
		hidden[k] = q.Get(k)
	}
	s.render(w, http.StatusOK, pageData{Scopes: strings.Fields(q.Get("scope")), Hidden: hidden, CSRF: csrf, ClientID: q.Get("client_id")})
}

func (s *Server) authorizeDecision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, pageData{Error: "The form could not be read."})
		return
	}
	f := r.PostForm
	c, err := r.Cookie(csrfCookie)
	if err != nil || f.Get("csrf") == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(f.Get("csrf"))) != 1 {
		s.render(w, http.StatusForbidden, pageData{Error: "This form has expired. Go back to devicegate and start again."})
		return
	}
	if msg, ok := s.checkRequest(f); !ok {
		s.render(w, http.StatusBadRequest, pageData{Error: msg})
		return
	}
	back, _ := url.Parse(s.o.RedirectURI)
	q := back.Query()
	q.Set("state", f.Get("state"))
	if f.Get("decision") != "allow" {
		q.Set("error", "access_denied")
		q.Set("error_description", "the user denied the request at the demo provider")
	} else {
		user := strings.TrimSpace(f.Get("username"))
		if user == "" {
			user = "demo"
		}
		if len(user) > 64 {
			user = user[:64]
		}
		code := s.random()
		s.mu.Lock()
		s.codes[code] = &grant{user: user, scope: f.Get("scope"), challenge: f.Get("code_challenge"), expires: s.o.Now().Add(codeLifetime)}
		s.mu.Unlock()
		q.Set("code", code)
	}
	back.RawQuery = q.Encode()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// tokenError writes an RFC 6749 §5.2 error.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="demo"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	f := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	if id != s.o.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.o.ClientSecret)) != 1 {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var user, scope string
	switch f.Get("grant_type") {
	case "authorization_code":
		g, ok := s.codes[f.Get("code")]
		switch {
		case !ok || now.After(g.expires):
			tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown or expired code")
			return
		case g.used:
			// RFC 6749 §4.1.2: a reused code revokes what it issued.
			for _, t := range g.issued {
				delete(s.access, t)
				delete(s.fresh, t)
			}
			tokenError(w, http.StatusBadRequest, "invalid_grant", "code already used")
			return
		case f.Get("redirect_uri") != s.o.RedirectURI:
			tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match")
			return
		case !verifierMatches(f.Get("code_verifier"), g.challenge):
			tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the challenge")
			return
		}
		g.used = true
		user, scope = g.user, g.scope
		at, rt := s.random(), s.random()
		g.issued = append(g.issued, at, rt)
		s.access[at] = token{user: user, scope: scope, expires: now.Add(tokenLifetime)}
		s.fresh[rt] = token{user: user, scope: scope}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(tokenLifetime / time.Second), "refresh_token": rt, "scope": scope})
	case "refresh_token":
		t, ok := s.fresh[f.Get("refresh_token")]
		if !ok {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
			return
		}
		at := s.random()
		s.access[at] = token{user: t.user, scope: t.scope, expires: now.Add(tokenLifetime)}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(tokenLifetime / time.Second), "scope": t.scope})
	case "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "use authorization_code or refresh_token")
	}
}

func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	at, ok := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	t, found := s.access[at]
	s.mu.Unlock()
	if !ok || !found || s.o.Now().After(t.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"sub": "demo|" + t.user, "name": t.user, "scope": t.scope})
}

const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo provider · sign in</title>
<link rel="stylesheet" href="{{.CSS}}">
</head>
<body>
<p class="banner" role="note">DEMO PROVIDER — not a real account. It stands in for Spotify so you can try devicegate.</p>
<main>
{{if .Error}}
<h1>Cannot continue</h1>
<p class="error" role="alert">{{.Error}}</p>
{{else}}
<h1>Sign in to the demo provider</h1>
<p><strong>{{.ClientID}}</strong> (devicegate) asks for access to your demo account.</p>
{{if .Scopes}}<p>Requested scopes:</p><ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">Username (any name will do)</label>
<input id="username" name="username" value="demo" autocomplete="username">
<div class="buttons">
<button type="submit" name="decision" value="allow" class="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="deny">Deny</button>
</div>
</form>
{{end}}
</main>
</body>
</html>
`

const css = `body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#fbf7ef;color:#222}
.banner{margin:0;padding:.75rem 1rem;background:#7a2e0e;color:#fff;font-weight:700;text-align:center;letter-spacing:.02em}
main{max-width:30rem;margin:1.5rem auto;padding:0 1.25rem}
h1{font-size:1.4rem}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
input[name=username]{width:100%;box-sizing:border-box;font:inherit;padding:.6rem;border:2px solid #c9bfae;border-radius:8px}
.buttons{display:flex;gap:.75rem;margin-top:1.25rem}
button{flex:1;min-height:3rem;font:inherit;font-weight:700;border-radius:8px;border:2px solid #7a2e0e;cursor:pointer}
.allow{background:#7a2e0e;color:#fff}.deny{background:#fff;color:#7a2e0e}
.error{background:#fdecea;border-left:4px solid #b42318;padding:.75rem 1rem}
:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
:root{color-scheme:light dark}
@media (prefers-color-scheme:dark){body{background:#1c1813;color:#eee}
input[name=username]{background:#2a241c;color:#eee;border-color:#6b5d49}
.deny{background:#1c1813;color:#f3b79a;border-color:#f3b79a}.error{background:#3a1d1b}}
`
