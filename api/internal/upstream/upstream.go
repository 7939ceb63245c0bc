// Package upstream is the OAuth 2.0 provider devicegate fronts: provider
// presets as data, the redirect to the provider's authorize endpoint, and
// the authorization-code exchange (with PKCE) through golang.org/x/oauth2.
//
// Its errors say which side failed and how — rejected, unavailable or
// malformed — and never carry a token, a code, a verifier or a secret.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Preset describes a provider as data, in the manner of x/oauth2/endpoints.
type Preset struct {
	Name        string // "spotify", "generic", …
	DisplayName string // shown to people: "Spotify"
	AuthURL     string
	TokenURL    string
	// PKCE says whether the provider supports S256 (RFC 7636).
	PKCE bool
	// AuthStyle is how devicegate authenticates at the token endpoint.
	AuthStyle oauth2.AuthStyle
	// ScopeSeparator joins scopes in the authorize request ("" means " ").
	ScopeSeparator string
	// RedirectRules tells a person registering the app what redirect URIs
	// the provider accepts.
	RedirectRules string
	// RegisterAt names the setting of the app at the provider where the
	// callback is entered, as the provider's own pages name it ("Redirect
	// URIs"); "" means "redirect URI". RegisterDomain says that setting
	// takes the callback's host only, not the whole URL (Strava's
	// Authorization Callback Domain).
	RegisterAt     string
	RegisterDomain bool
	// RefusesLocalhost says the provider rejects redirect URIs on
	// "localhost" (but takes loopback IP literals); config warns about a
	// localhost public URL.
	RefusesLocalhost bool
	// Scopes describes the provider's scopes in plain language, for the
	// confirmation screen (scopes.go); a scope without one is shown as is.
	Scopes map[string]string
	// AuthParams are extra parameters the provider needs on the authorize
	// request, e.g. Dropbox's token_access_type=offline for refresh tokens.
	AuthParams map[string]string
	// Issuer is the provider's issuer identifier, when known (oidc
	// discovery). An authorization response's iss (RFC 9207) must equal it.
	Issuer string
	// IssParameter says the provider promises iss on every authorization
	// response (RFC 9207 §3), so one without it is refused.
	IssParameter bool
	// RevocationURL is the provider's RFC 7009 revocation endpoint, when it
	// has one (OIDC discovery's revocation_endpoint); "" means none, and a
	// token revoked at devicegate stays valid at the provider until it
	// lapses there.
	RevocationURL string
	// AccountURL answers, to a GET with the person's access token, a JSON
	// object whose AccountField names their account at the provider: OIDC
	// userinfo (OIDC Core §5.3) and its "sub", Spotify's /v1/me and its
	// "id". AccountScopes are the fewest scopes that let the token read it
	// (the /devices sign-in asks for these alone). "" means the provider
	// has none devicegate knows of, and the person's device list is not
	// offered for it.
	AccountURL    string
	AccountField  string
	AccountScopes []string
}

var presets = map[string]Preset{
	"spotify": {
		Name:             "spotify",
		DisplayName:      "Spotify",
		AuthURL:          "https://accounts.spotify.com/authorize",
		TokenURL:         "https://accounts.spotify.com/api/token",
		PKCE:             true,
		AuthStyle:        oauth2.AuthStyleInHeader,
		RedirectRules:    "HTTPS, or a loopback IP literal such as http://127.0.0.1:8080/api/callback; \"localhost\" is refused.",
		RegisterAt:       "Redirect URIs",
		RefusesLocalhost: true,
		Scopes:           spotifyScopes,
		// "Get Current User's Profile": id needs no scope (the scopes
		// user-read-private and user-read-email add other fields only).
		AccountURL:   "https://api.spotify.com/v1/me",
		AccountField: "id",
	},
	"strava": {
		Name:           "strava",
		DisplayName:    "Strava",
		AuthURL:        "https://www.strava.com/oauth/authorize",
		TokenURL:       "https://www.strava.com/oauth/token",
		PKCE:           false, // not supported by Strava
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: ",",
		RedirectRules:  "Set the app's Authorization Callback Domain to your devicegate host (no scheme, no path); localhost and 127.0.0.1 are allowed for trials.",
		RegisterAt:     "Authorization Callback Domain",
		RegisterDomain: true,
		// Strava's token answer also carries an "athlete" object; devicegate
		// passes on the standard fields only.
		AuthParams: map[string]string{"approval_prompt": "auto"},
		Scopes:     stravaScopes,
	},
	"discord": {
		Name:          "discord",
		DisplayName:   "Discord",
		AuthURL:       "https://discord.com/oauth2/authorize",
		TokenURL:      "https://discord.com/api/oauth2/token",
		PKCE:          false, // not documented by Discord
		AuthStyle:     oauth2.AuthStyleInHeader,
		RedirectRules: "Add <public URL>/api/callback under OAuth2 → Redirects; it must match exactly. http is accepted for localhost only.",
		RegisterAt:    "OAuth2 → Redirects",
		Scopes:        discordScopes,
		// Discord's RFC 8414 metadata (discord.com/.well-known/
		// oauth-authorization-server) names it. Spotify, Strava, Dropbox
		// and Twitch have no RFC 7009 endpoint: Strava's deauthorize and
		// Dropbox's token/revoke end the whole app's grant, not one token.
		RevocationURL: "https://discord.com/api/oauth2/token/revoke",
		// "Get Current User" needs the identify scope.
		AccountURL:    "https://discord.com/api/users/@me",
		AccountField:  "id",
		AccountScopes: []string{"identify"},
	},
	"dropbox": {
		Name:          "dropbox",
		DisplayName:   "Dropbox",
		AuthURL:       "https://www.dropbox.com/oauth2/authorize",
		TokenURL:      "https://api.dropboxapi.com/oauth2/token",
		PKCE:          true,
		AuthStyle:     oauth2.AuthStyleInHeader,
		RedirectRules: "Add <public URL>/api/callback under Redirect URIs; HTTPS is required except for localhost.",
		RegisterAt:    "Redirect URIs",
		// Without it Dropbox issues short-lived tokens and no refresh token.
		AuthParams: map[string]string{"token_access_type": "offline"},
		Scopes:     dropboxScopes,
	},
	"twitch": {
		Name:          "twitch",
		DisplayName:   "Twitch",
		AuthURL:       "https://id.twitch.tv/oauth2/authorize",
		TokenURL:      "https://id.twitch.tv/oauth2/token",
		PKCE:          false, // not supported by Twitch
		AuthStyle:     oauth2.AuthStyleInParams,
		RedirectRules: "Add <public URL>/api/callback as an OAuth Redirect URL; HTTPS is required except for http://localhost.",
		RegisterAt:    "OAuth Redirect URLs",
		// Twitch answers with "scope" as a JSON array; devicegate turns it
		// into the usual space-separated string.
		Scopes: twitchScopes,
	},
	"generic": {
		Name:          "generic",
		DisplayName:   "", // the configuration's name, by default the host of its auth URL
		PKCE:          true,
		AuthStyle:     oauth2.AuthStyleAutoDetect,
		RedirectRules: "Whatever the provider accepts; register <public URL>/api/callback exactly.",
		Scopes:        openIDScopes,
	},
}

// Lookup returns the preset with name. The generic preset has no URLs:
// the configuration supplies them.
func Lookup(name string) (Preset, bool) {
	p, ok := presets[strings.ToLower(name)]
	return p, ok
}

// Names lists the presets, sorted.
func Names() []string {
	out := make([]string, 0, len(presets))
	for n := range presets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Options configures a Provider.
type Options struct {
	Preset       Preset
	ClientID     string
	ClientSecret string
	RedirectURL  string // devicegate's callback
	// HTTPClient is used for the exchange; nil → a client with timeouts.
	HTTPClient *http.Client
	// Timeout bounds one exchange; 0 → 10 s.
	Timeout time.Duration
}

// Provider talks to one upstream.
type Provider struct {
	preset  Preset
	cfg     oauth2.Config
	client  *http.Client
	timeout time.Duration
}

// New checks o and returns a Provider.
func New(o Options) (*Provider, error) {
	var errs []error
	for name, v := range map[string]string{"authorize URL": o.Preset.AuthURL, "token URL": o.Preset.TokenURL, "redirect URL": o.RedirectURL} {
		if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("upstream: the %s %q is not an absolute http(s) URL", name, v))
		}
	}
	if o.ClientID == "" {
		errs = append(errs, errors.New("upstream: a client id is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Provider{
		preset: o.Preset,
		cfg: oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret,
			RedirectURL:  o.RedirectURL,
			Endpoint:     oauth2.Endpoint{AuthURL: o.Preset.AuthURL, TokenURL: o.Preset.TokenURL, AuthStyle: o.Preset.AuthStyle},
		},
		client:  client,
		timeout: timeout,
	}, nil
}

// Name is the preset's name.
func (p *Provider) Name() string { return p.preset.Name }

// DisplayName is the provider's name for people.
func (p *Provider) DisplayName() string { return p.preset.DisplayName }

// ScopeDescriptions returns a copy of the preset's scope descriptions.
func (p *Provider) ScopeDescriptions() map[string]string { return maps.Clone(p.preset.Scopes) }

// Identity names devicegate's app at this provider — its token endpoint
// and client id — for refresh-token bindings: a token issued through one
// app is refreshed only through that app.
func (p *Provider) Identity() string { return p.cfg.Endpoint.TokenURL + " " + p.cfg.ClientID }

// RedirectURL is where this provider sends people back. Each provider of a
// deployment has its own (RFC 9700 §4.4.2), so the callback knows which
// provider an answer came from.
func (p *Provider) RedirectURL() string { return p.cfg.RedirectURL }

// Registration says what to enter in the settings of devicegate's app at
// the provider so that it sends people back here: the setting, as the
// provider names it; key, "redirect_uri" or "callback_domain", for a log
// line; and the value — the whole redirect URL, or its host for a
// provider that asks for a domain (Strava).
func (p *Provider) Registration() (setting, key, value string) {
	setting = p.preset.RegisterAt
	if setting == "" {
		setting = "redirect URI"
	}
	if p.preset.RegisterDomain {
		u, err := url.Parse(p.cfg.RedirectURL)
		if err == nil {
			return setting, "callback_domain", u.Hostname()
		}
	}
	return setting, "redirect_uri", p.cfg.RedirectURL
}

// CheckIssuer applies RFC 9207 to an authorization response's iss: when
// the provider's issuer is known, a given iss must equal it, and a provider
// that promised iss must send it. It reports whether the response may be
// from this provider.
func (p *Provider) CheckIssuer(iss string) bool {
	switch {
	case p.preset.Issuer == "":
		return true
	case iss == "":
		return !p.preset.IssParameter
	}
	return iss == p.preset.Issuer
}

// AuthCodeURL is the provider's authorize URL for one authorization:
// response_type=code, our client and callback, the scopes, state and, when
// the provider supports it, the S256 challenge of verifier.
func (p *Provider) AuthCodeURL(state, verifier string, scopes []string) string {
	var opts []oauth2.AuthCodeOption
	if p.preset.PKCE && verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	for k, v := range p.preset.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	// OpenID Connect Core §11: a request for offline_access (a refresh
	// token) must carry prompt=consent; strict providers (oidc-provider)
	// otherwise drop the scope and issue no refresh token.
	if _, set := p.preset.AuthParams["prompt"]; !set && slices.Contains(scopes, "offline_access") {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	cfg := p.oauthConfig("")
	if sep := p.preset.ScopeSeparator; sep != "" && sep != " " && len(scopes) > 0 {
		// x/oauth2 always joins with spaces; a provider that wants another
		// separator gets one pre-joined scope.
		cfg.Scopes = []string{strings.Join(scopes, sep)}
	} else {
		cfg.Scopes = scopes
	}
	return cfg.AuthCodeURL(state, opts...)
}

// Challenge is the S256 challenge of a PKCE verifier (RFC 7636 §4.2).
func Challenge(verifier string) string {
	u, _ := url.Parse((&oauth2.Config{Endpoint: oauth2.Endpoint{AuthURL: "https://x/"}}).AuthCodeURL("", oauth2.S256ChallengeOption(verifier)))
	return u.Query().Get("code_challenge")
}

// Tokens is what the provider issued.
type Tokens struct {
	AccessToken, TokenType, RefreshToken, Scope, IDToken string
	// ExpiresIn is the provider's expires_in; zero when it gave none.
	ExpiresIn time.Duration
	// Expiry is ExpiresIn counted from the exchange; zero when none.
	Expiry time.Time
}

// ErrorKind says which way an exchange failed.
type ErrorKind int

const (
	// KindRejected: the provider answered with an OAuth error or a 4xx.
	KindRejected ErrorKind = iota + 1
	// KindUnavailable: a 5xx, a network failure or a timeout.
	KindUnavailable
	// KindMalformed: a 2xx the client cannot use (not JSON, no token).
	KindMalformed
)

func (k ErrorKind) String() string {
	switch k {
	case KindRejected:
		return "rejected"
	case KindUnavailable:
		return "unavailable"
	case KindMalformed:
		return "malformed"
	}
	return "unknown"
}

// ExchangeError is a failed code exchange.
type ExchangeError struct {
	Kind   ErrorKind
	Code   string // the provider's RFC 6749 error code, if it sent one
	Status int    // the HTTP status, if there was an answer
	Err    error  // the cause, for errors.Is/As; its text is never shown
}

// Error says kind, status and error code only: the cause's text may quote
// the provider's body, which can echo what we sent.
func (e *ExchangeError) Error() string {
	s := "upstream token exchange " + e.Kind.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	return s
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// ClientRejected reports whether the provider refused the client's
// credentials (invalid_client, or a bare 401) rather than the grant.
func (e *ExchangeError) ClientRejected() bool {
	return e.Kind == KindRejected && (e.Code == "invalid_client" || (e.Code == "" && e.Status == http.StatusUnauthorized))
}

// Exchange trades an authorization code, with its PKCE verifier, for
// tokens, within the Provider's timeout.
func (p *Provider) Exchange(ctx context.Context, code, verifier string) (*Tokens, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	var opts []oauth2.AuthCodeOption
	if p.preset.PKCE && verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	start := time.Now()
	t, err := p.cfg.Exchange(ctx, code, opts...)
	if err != nil {
		return nil, classify(err)
	}
	return fromToken(t, start), nil
}

// Refresh trades a refresh token for new tokens at the provider, with
// devicegate's client authentication: a device never holds the provider's
// client secret, which providers such as Spotify require for refreshing.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	start := time.Now()
	// An expired token with only the refresh token set makes the token
	// source refresh at once.
	t, err := p.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: start.Add(-time.Hour)}).Token()
	if err != nil {
		return nil, classify(err)
	}
	out := fromToken(t, start)
	if out.RefreshToken == refreshToken {
		// x/oauth2 carries the old refresh token over when the provider
		// sends none; the device already has it.
		out.RefreshToken = ""
	}
	return out, nil
}

// ExchangeWithSecret is Exchange authenticating with secret instead of the
// configured one: in passthrough mode the device presents the provider's
// client secret and devicegate uses it for this one request, never keeping
// it.
func (p *Provider) ExchangeWithSecret(ctx context.Context, secret, code, verifier string) (*Tokens, error) {
	return p.withSecret(secret).Exchange(ctx, code, verifier)
}

// RefreshWithSecret is Refresh with the secret the device presented
// (passthrough mode).
func (p *Provider) RefreshWithSecret(ctx context.Context, secret, refreshToken string) (*Tokens, error) {
	return p.withSecret(secret).Refresh(ctx, refreshToken)
}

// withSecret is a Provider for one request with another client secret.
func (p *Provider) withSecret(secret string) *Provider {
	return &Provider{preset: p.preset, cfg: p.oauthConfig(secret), client: p.client, timeout: p.timeout}
}

// oauthConfig is a fresh oauth2.Config for p's client with secret. Fresh,
// not a copy of p.cfg: copying would race with the auth-style cache that
// x/oauth2 updates inside p.cfg during Exchange.
func (p *Provider) oauthConfig(secret string) oauth2.Config {
	return oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: secret, RedirectURL: p.cfg.RedirectURL, Endpoint: p.cfg.Endpoint}
}

// Timeout bounds one exchange or refresh.
func (p *Provider) Timeout() time.Duration { return p.timeout }

// fromToken converts an x/oauth2 token obtained at start.
func fromToken(t *oauth2.Token, start time.Time) *Tokens {
	out := &Tokens{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
	}
	switch sc := t.Extra("scope").(type) {
	case string:
		out.Scope = sc
	case []any: // Twitch
		var parts []string
		for _, v := range sc {
			if s, ok := v.(string); ok {
				parts = append(parts, s)
			}
		}
		out.Scope = strings.Join(parts, " ")
	}
	if s, ok := t.Extra("id_token").(string); ok {
		out.IDToken = s
	}
	if t.ExpiresIn > 0 {
		out.ExpiresIn = time.Duration(t.ExpiresIn) * time.Second
		out.Expiry = start.Add(out.ExpiresIn)
	} else if !t.Expiry.IsZero() {
		out.Expiry = t.Expiry
		out.ExpiresIn = t.Expiry.Sub(start).Round(time.Second)
	}
	return out
}

// classify sorts an x/oauth2 error into an ExchangeError.
func classify(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		switch {
		case status >= 500:
			return &ExchangeError{Kind: KindUnavailable, Status: status, Err: err}
		case status >= 400 || re.ErrorCode != "":
			return &ExchangeError{Kind: KindRejected, Status: status, Code: safeCode(re.ErrorCode), Err: err}
		default:
			return &ExchangeError{Kind: KindMalformed, Status: status, Err: err}
		}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) {
		return &ExchangeError{Kind: KindUnavailable, Err: err}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &ExchangeError{Kind: KindUnavailable, Err: err}
	}
	// What is left comes from decoding a 2xx answer: "server response
	// missing access_token", a JSON error, an unknown content type.
	return &ExchangeError{Kind: KindMalformed, Err: err}
}

// safeCode keeps an error code only if it has the shape RFC 6749 gives
// error codes, so a hostile provider cannot put text into our messages.
func safeCode(c string) string {
	if len(c) > 64 {
		return ""
	}
	for _, r := range c {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == ' ' {
			return ""
		}
	}
	return c
}
