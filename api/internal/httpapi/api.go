package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// maxFormBytes bounds a request body. Every legitimate request is a few
// hundred bytes; the bound keeps a slow or huge body from tying us up.
const maxFormBytes = 16 << 10

// GrantTypeDeviceCode is the grant type of RFC 8628 §3.4.
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

func invalidRequest(desc string) error {
	return oauth.ErrInvalidRequest.WithDescription(desc)
}

// errEmptyBody answers a POST whose body holds nothing. Behind Static Web
// Apps the Azure Functions host rebuilds each request and copies its body
// only when Content-Length is above zero, dropping Content-Type with it
// (azure-functions-host HttpRequestExtensions.ToHttpRequestMessage): a body
// sent chunked either never reaches devicegate (the host's client refuses to
// send the rebuilt request and the host answers 500) or, where something in
// front has removed the chunked framing or the client spoke HTTP/2 without a
// length, arrives here empty and untyped. The description says what the
// client must change rather than that its form is not a form (docs/DEPLOY.md,
// "Functions host mode").
var errEmptyBody = oauth.ErrInvalidRequest.WithDescription("the request body is empty: send the parameters as an application/x-www-form-urlencoded body with a Content-Length header; a body sent chunked, without Content-Length, does not reach devicegate through the Azure Functions host")

// parseForm reads an application/x-www-form-urlencoded body, as RFC 6749
// §3.2 and RFC 8628 §3.1 require, and rejects repeated parameters (RFC 6749
// §3.1: parameters must not be included more than once). Only the body
// counts: parameters in the query string are not read. An empty body is
// errEmptyBody, checked before the type, since the forwarding host drops
// the type with the body.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	const formType = "application/x-www-form-urlencoded"
	// ContentLength is 0 for "Content-Length: 0" and for a request without
	// any body framing, -1 for a chunked body (counted below).
	if r.ContentLength == 0 {
		return emptyForm(r)
	}
	// The plain type, as devices send it, needs no parsing (and ParseMediaType
	// allocates); anything else is parsed as before.
	if ct := headerValue(r.Header, "Content-Type"); ct != formType {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != formType {
			return nil, invalidRequest("the request body must be application/x-www-form-urlencoded")
		}
	}
	form, n, err := readForm(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, oauth.Error{Code: "invalid_request", Description: "the request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, invalidRequest("the request body is not valid form encoding")
	}
	if n == 0 {
		// A chunked body with no bytes in it.
		return emptyForm(r)
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, invalidRequest("parameter " + safeName(k) + " is given more than once")
		}
	}
	return form, nil
}

// readForm is what r.ParseForm does for a form body, with the same errors
// in the same order, without its copies: ParseForm builds the body's map
// and then a second one (Form) merging it with the query's, and reads the
// body through io.ReadAll's growing buffer. Here the body is read, through
// http.MaxBytesReader (which also has the connection closed after an
// oversized body, as before), into a pooled buffer; parsed once; and the
// query is only checked for the error ParseForm would report. n is the
// number of body bytes read. r.PostForm is set, so a later ParseForm
// would not read the spent body again.
func readForm(w http.ResponseWriter, r *http.Request) (form url.Values, n int, err error) {
	switch {
	case r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch:
	case r.Body == nil:
		err = errors.New("missing form body") // as ParseForm; a server never leaves Body nil
	default:
		bp := formBufs.Get().(*[]byte)
		buf := (*bp)[:0]
		body := http.MaxBytesReader(w, r.Body, maxFormBytes)
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			m, rerr := body.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				err = rerr
				break
			}
		}
		n = len(buf)
		if err == nil {
			form, err = url.ParseQuery(string(buf))
		}
		*bp = buf
		formBufs.Put(bp)
	}
	if form == nil {
		form = url.Values{}
	}
	r.PostForm = form
	if r.URL != nil && r.URL.RawQuery != "" {
		if _, qerr := url.ParseQuery(r.URL.RawQuery); err == nil {
			err = qerr
		}
	}
	return form, n, err
}

// formBufs recycles readForm's buffers; one holds the largest body
// accepted (maxFormBytes, plus the byte that shows a body is larger).
var formBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// headerValue is h.Get(key) for a key written in canonical form, without
// canonicalizing it again on every request (net/http stores the headers it
// reads under canonical keys).
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// emptyForm decides a request whose body is empty. Only a client that
// authenticates with HTTP Basic may send nothing in it: a device
// authorization request then needs no parameter (RFC 8628 §3.1 asks for
// client_id only from a client not authenticating per RFC 6749 §3.2.1, and
// scope is optional). Every other empty body is errEmptyBody.
func emptyForm(r *http.Request) (url.Values, error) {
	if _, _, ok := r.BasicAuth(); ok {
		return url.Values{}, nil
	}
	return nil, errEmptyBody
}

// safeName quotes a parameter name for an error description, cut short and
// reduced to printable ASCII so a hostile name cannot shape our answer.
func safeName(k string) string {
	var b strings.Builder
	for _, r := range k {
		if b.Len() >= 40 {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r < 0x7f && r != '"' && r != '\\' {
			b.WriteRune(r)
		} else {
			b.WriteRune('?')
		}
	}
	return `"` + b.String() + `"`
}

// authenticateClient identifies the device client (RFC 6749 §2.3, §3.2.1).
// Public clients name themselves with client_id. Confidential clients prove
// themselves with client_secret_basic or client_secret_post; post must work
// because Azure Static Web Apps overwrites the Authorization header on /api.
// An Authorization header that is not Basic is therefore ignored.
//
// A passthrough client's secret is the provider's, which devicegate does
// not hold and so cannot check: it is returned for the exchange, where the
// provider checks it. (The returned secret is empty for other clients.)
func (s *server) authenticateClient(r *http.Request, form url.Values) (*config.Client, credentials, error) {
	var (
		basicID, basicSecret string
		hasBasic             bool
	)
	if len(r.Header["Authorization"]) > 0 { // BasicAuth finds nothing otherwise
		basicID, basicSecret, hasBasic = r.BasicAuth()
	}
	cred := credentials{basic: hasBasic}
	if hasBasic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, cred, invalidClient(true, "the Basic credentials are not form-encoded correctly")
		}
	}
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")
	if hasBasic && postSecret != "" {
		return nil, cred, invalidRequest("use one client authentication method, not both Basic and client_secret")
	}
	id, secret := postID, postSecret
	if hasBasic {
		if postID != "" && postID != basicID {
			return nil, cred, invalidClient(true, "client_id does not match the Basic credentials")
		}
		id, secret = basicID, basicSecret
	}
	if id == "" {
		return nil, cred, invalidRequest("client_id is required")
	}
	c, ok := s.Clients(id)
	if !ok {
		return nil, cred, invalidClient(hasBasic, "unknown client")
	}
	if c.Passthrough() {
		if len(secret) > 1024 {
			return nil, cred, invalidClient(hasBasic, "client authentication failed")
		}
		if secret != "" {
			// The provider compares this secret: devicegate must not be
			// an unlimited oracle for it either.
			if err := s.clientAuthBlocked(r, c); err != nil {
				return nil, cred, err
			}
		}
		cred.upstreamSecret = secret
		return c, cred, nil
	}
	if c.Public() {
		return c, cred, nil
	}
	if secret == "" {
		return nil, cred, invalidClient(hasBasic, "client authentication is required for this client")
	}
	// RFC 6749 §2.3.1: brute force against the secret must be stopped. An
	// address or client over its budget of failures is refused before the
	// secret is compared, so a guess past the budget learns nothing.
	if err := s.clientAuthBlocked(r, c); err != nil {
		return nil, cred, err
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		if err := s.clientAuthFailed(r.Context(), s.clientIP(r), c); err != nil {
			return nil, cred, err
		}
		return nil, cred, invalidClient(hasBasic, "client authentication failed")
	}
	return c, cred, nil
}

// Rate-limit names of failed client authentications.
const (
	limitClientAuth       = "client-auth"        // per address (each network of it)
	limitClientAuthClient = "client-auth-client" // per client_id
)

// clientAuthBlocked refuses, before any secret is compared or passed on,
// a request from an address or for a client whose failed authentications
// are over their budget (RateClientAuth, RateClientAuthClient).
func (s *server) clientAuthBlocked(r *http.Request, c *config.Client) error {
	if b, retry := s.Limiter.BlockedAddr(limitClientAuth, s.clientIP(r)); b {
		return tooManyFailures(retry, "this address")
	}
	if b, retry := s.Limiter.Blocked(limitClientAuthClient, c.ID); b {
		return tooManyFailures(retry, "this client")
	}
	return nil
}

// clientAuthFailed logs a failed client authentication — the client and
// the address, never the value tried — and counts it against the address
// and the client. Past either budget it returns the 429 to answer instead
// of invalid_client; until then nil.
func (s *server) clientAuthFailed(ctx context.Context, ip netip.Addr, c *config.Client) error {
	s.Logger.WarnContext(ctx, "client authentication failed", "client_id", c.ID, "address", ip.String())
	overAddr, retryAddr := s.Limiter.FailAddr(ctx, limitClientAuth, s.RateClientAuth, ip)
	overClient, retryClient := s.Limiter.Fail(ctx, limitClientAuthClient, s.RateClientAuthClient, c.ID)
	switch {
	case overAddr:
		return tooManyFailures(retryAddr, "this address")
	case overClient:
		return tooManyFailures(retryClient, "this client")
	}
	return nil
}

// tooManyFailures is the answer past a budget of failed client
// authentications: 429 with Retry-After (RFC 6585 §4) and slow_down, as
// for the other limits of the token endpoint. Not invalid_client: the
// secret was not compared, and a device told invalid_client concludes its
// secret is wrong, while slow_down tells it to wait and try again, which
// is the truth (SECURITY.md gives the reasoning).
func tooManyFailures(retry time.Duration, who string) error {
	return limited{retry: retry, err: oauth.Error{Code: "slow_down", Status: http.StatusTooManyRequests,
		Description: "too many failed client authentications from " + who + "; retry after " + strconv.Itoa(int((retry+time.Second-1)/time.Second)) + " seconds"}}
}

// limited marks an error answer that must carry Retry-After.
type limited struct {
	retry time.Duration
	err   oauth.Error
}

func (l limited) Error() string { return l.err.Error() }
func (l limited) Unwrap() error { return l.err }

// credentials is what a request's client authentication carried beyond the
// client's identity.
type credentials struct {
	basic bool // the Authorization header was used
	// upstreamSecret is the provider's client secret a passthrough device
	// presented; devicegate passes it on and never stores it.
	upstreamSecret string
}

// requireUpstreamSecret refuses a passthrough client's token request that
// came without the provider's secret.
func (c credentials) requireUpstreamSecret() error {
	if c.upstreamSecret == "" {
		return invalidClient(c.basic, "this client is in passthrough mode: authenticate with the provider's client secret (client_secret_post or client_secret_basic)")
	}
	return nil
}

// invalidClient is RFC 6749 §5.2's 401, with WWW-Authenticate when the
// client tried the Authorization header.
func invalidClient(basic bool, desc string) error {
	e := oauth.ErrInvalidClient.WithDescription(desc)
	if basic {
		return challenge{e}
	}
	return e
}

// challenge marks an invalid_client answer that must carry WWW-Authenticate.
type challenge struct{ err oauth.Error }

func (c challenge) Error() string { return c.err.Error() }
func (c challenge) Unwrap() error { return c.err }

// authorizeResponse is RFC 8628 §3.2's answer.
type authorizeResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// authorize is the device authorization endpoint (RFC 8628 §3.1–3.2).
func (s *server) authorize(w http.ResponseWriter, r *http.Request) error {
	form, err := parseForm(w, r)
	if err != nil {
		return err
	}
	c, _, err := s.authenticateClient(r, form)
	if err != nil {
		return s.withChallenge(w, err)
	}
	scopes, err := resolveScopes(c, form.Get("scope"))
	if err != nil {
		return err
	}
	if ok, retry := s.allow(r, "authorize", s.RateAuthorize); !ok {
		retryAfter(w, retry)
		return oauth.Error{Code: "slow_down", Status: http.StatusTooManyRequests,
			Description: "too many device authorizations from this address; retry after " + strconv.Itoa(int(retry.Seconds()+0.5)) + " seconds"}
	}
	a, err := s.Service.Authorize(r.Context(), c.ID, scopes)
	if err != nil {
		return err
	}
	uc := deviceflow.FormatUserCode(a.UserCode)
	oauth.WriteJSON(w, http.StatusOK, authorizeResponse{
		DeviceCode:      a.DeviceCode,
		UserCode:        uc,
		VerificationURI: s.PublicURL + "/device",
		// The complete link leads straight to the server-rendered
		// confirmation, which shows the code to compare (RFC 8628 §3.3.1)
		// with or without JavaScript, locally and behind Static Web Apps.
		VerificationURIComplete: s.PublicURL + "/api/verify?user_code=" + url.QueryEscape(uc),
		ExpiresIn:               int64(a.ExpiresIn / time.Second),
		Interval:                int64(a.Interval / time.Second),
	})
	return nil
}

// withChallenge adds WWW-Authenticate for a challenge error (Retry-After
// for a limited one) and returns it.
func (s *server) withChallenge(w http.ResponseWriter, err error) error {
	var c challenge
	if errors.As(err, &c) {
		w.Header().Set("WWW-Authenticate", `Basic realm="devicegate", charset="UTF-8"`)
		return c.err
	}
	var l limited
	if errors.As(err, &l) {
		retryAfter(w, l.retry)
		return l.err
	}
	return err
}

// resolveScopes checks a requested scope string (RFC 6749 §3.3) against the
// client's allowed scopes; none requested means the client's defaults.
func resolveScopes(c *config.Client, raw string) ([]string, error) {
	if len(raw) > 2048 {
		return nil, oauth.ErrInvalidScope.WithDescription("the scope parameter is too long")
	}
	requested := strings.Fields(raw)
	if raw != "" && strings.Join(requested, " ") != raw {
		return nil, oauth.ErrInvalidScope.WithDescription("scopes must be separated by single spaces")
	}
	if len(requested) == 0 {
		return c.DefaultScopes, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, sc := range requested {
		if !config.ValidScope(sc) {
			return nil, oauth.ErrInvalidScope.WithDescription("a scope contains characters RFC 6749 does not allow")
		}
		if !c.AllowsScope(sc) {
			return nil, oauth.ErrInvalidScope.WithDescription("scope " + safeName(sc) + " is not allowed for this client")
		}
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	return out, nil
}

// token is the token endpoint for the device grant (RFC 8628 §3.4–3.5).
// Every answer, success or error, is no-store (RFC 6749 §5.1): WriteJSON
// sets it.
func (s *server) token(w http.ResponseWriter, r *http.Request) error {
	form, err := parseForm(w, r)
	if err != nil {
		return err
	}
	if len(form) == 0 {
		// A token request always names its grant type (RFC 6749 §4.1.3,
		// RFC 8628 §3.4), so an empty body is never one, Basic or not.
		return errEmptyBody
	}
	gt := form.Get("grant_type")
	switch gt {
	case "":
		return invalidRequest("grant_type is required")
	case GrantTypeDeviceCode, "refresh_token":
	default:
		return oauth.ErrUnsupportedGrantType.WithDescription("supported grant types: " + GrantTypeDeviceCode + ", refresh_token")
	}
	c, cred, err := s.authenticateClient(r, form)
	if err != nil {
		return s.withChallenge(w, err)
	}
	if c.Passthrough() {
		if err := cred.requireUpstreamSecret(); err != nil {
			return s.withChallenge(w, err)
		}
	}
	up, err := s.upstreamFor(c.ID)
	if err != nil {
		return err
	}
	if gt == "refresh_token" {
		return s.refresh(w, r, form, c, cred, up)
	}
	dc := form.Get("device_code")
	if dc == "" {
		return invalidRequest("device_code is required")
	}
	// Polls of device codes that match nothing (or another client's) are
	// limited per address, and an address over that budget is refused
	// before the store is read: junk polls cost no database read.
	ip := s.clientIP(r)
	if b, retry := s.Limiter.BlockedAddr(limitPollMisses, ip); b {
		return tooManyPollMisses(w, retry)
	}
	if len(dc) > 512 {
		if over, retry := s.Limiter.FailAddr(r.Context(), limitPollMisses, s.RatePollMisses, ip); over {
			return tooManyPollMisses(w, retry)
		}
		return oauth.ErrInvalidGrant.WithDescription("unknown or already used device_code")
	}
	var (
		tok     *deviceflow.TokenResponse
		outcome deviceflow.Outcome
	)
	if c.Passthrough() {
		tok, outcome, err = s.Service.PollExchange(r.Context(), c.ID, dc, s.exchanger(c, up, cred.upstreamSecret, ip))
	} else {
		tok, outcome, err = s.Service.Poll(r.Context(), c.ID, dc)
	}
	if outcome == deviceflow.OutcomeUnknown {
		if over, retry := s.Limiter.FailAddr(r.Context(), limitPollMisses, s.RatePollMisses, ip); over {
			return tooManyPollMisses(w, retry)
		}
	}
	if err != nil {
		if cred.basic && errors.Is(err, oauth.ErrInvalidClient) {
			w.Header().Set("WWW-Authenticate", `Basic realm="devicegate", charset="UTF-8"`)
		}
		return err
	}
	oauth.WriteJSON(w, http.StatusOK, tok)
	return nil
}

// limitPollMisses names the per-address budget of polls naming unknown
// device codes.
const limitPollMisses = "poll-misses"

// tooManyPollMisses is the answer past that budget.
func tooManyPollMisses(w http.ResponseWriter, retry time.Duration) error {
	retryAfter(w, retry)
	return oauth.Error{Code: "slow_down", Status: http.StatusTooManyRequests,
		Description: "too many polls of unknown device codes from this address; retry after " + strconv.Itoa(int((retry+time.Second-1)/time.Second)) + " seconds"}
}

// exchanger is the passthrough exchange with the secret the device
// presented, its failures sorted into what the flow should do: a secret the
// provider refuses is the device's to fix (invalid_client, code kept); a
// provider out of reach is retried on the next poll (authorization_pending);
// a code the provider refuses, or an unusable answer, ends the flow.
func (s *server) exchanger(c *config.Client, up Upstream, secret string, ip netip.Addr) deviceflow.Exchanger {
	return func(ctx context.Context, code, verifier string) (*deviceflow.Tokens, error) {
		t, err := up.ExchangeWithSecret(ctx, secret, code, verifier)
		if err == nil {
			if err := s.bindTokens(ctx, c, up, t, nil); err != nil {
				var oe oauth.Error
				if errors.As(err, &oe) {
					return nil, &deviceflow.ExchangeFailure{Answer: oe}
				}
				// The code is spent at the provider: hand the tokens over
				// even so; only refreshing through devicegate will fail.
				s.Logger.ErrorContext(ctx, "could not bind the refresh token (passthrough); delivering the tokens anyway", "err", err)
			}
			return storedTokens(t, s.Now()), nil
		}
		s.Logger.WarnContext(ctx, "upstream token exchange failed (passthrough)", "err", err)
		provider := up.DisplayName()
		var xe *upstream.ExchangeError
		errors.As(err, &xe)
		switch {
		case xe != nil && (xe.ClientRejected() || (xe.Kind == upstream.KindRejected && xe.Code == "unauthorized_client")):
			// Counted like a wrong secret of our own: the next tries
			// from this address or for this client wait once over budget.
			_ = s.clientAuthFailed(ctx, ip, c)
			return nil, &deviceflow.ExchangeFailure{Retry: true, Answer: oauth.ErrInvalidClient.WithDescription(
				provider + " refused the client credentials the device presented; the sign-in is kept, so poll again with the right client secret")}
		case xe != nil && xe.Kind != upstream.KindUnavailable:
			return nil, &deviceflow.ExchangeFailure{Answer: oauth.ErrAccessDenied.WithDescription(exchangeReason(provider, err))}
		}
		return nil, &deviceflow.ExchangeFailure{Retry: true, Answer: oauth.ErrAuthorizationPending.WithDescription(
			provider + " could not be reached to complete the sign-in; it is tried again on the next poll")}
	}
}

// bindTokens checks the scopes the provider granted against the client's
// allowed list (an oauth.Error access_denied when they exceed it) and
// records the refresh token's binding to this client and provider.
// requested are the scopes the record asked for, the answer when the
// provider names none.
func (s *server) bindTokens(ctx context.Context, c *config.Client, up Upstream, t *upstream.Tokens, requested []string) error {
	scopes, err := grantedScopes(c, t.Scope, requested)
	if err != nil {
		s.Logger.WarnContext(ctx, "provider granted scopes beyond the client's allowed list; tokens refused", "client_id", c.ID)
		return oauth.ErrAccessDenied.WithDescription(up.DisplayName() + " granted more than this device may hold (" + err.Error() + "); nothing was delivered")
	}
	if t.RefreshToken == "" {
		return nil
	}
	return s.Service.BindRefresh(context.WithoutCancel(ctx), t.RefreshToken, c.ID, up.Identity(), scopes, s.deviceAccount(ctx, up, t.AccessToken))
}

// storedTokens converts the provider's tokens for the device flow, with
// the expiry counted on our own clock, the one a poll reads.
func storedTokens(t *upstream.Tokens, now time.Time) *deviceflow.Tokens {
	out := &deviceflow.Tokens{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Scope:        t.Scope,
	}
	if t.ExpiresIn > 0 {
		out.Expiry = now.Add(t.ExpiresIn)
	}
	return out
}

// refresh passes a refresh_token grant (RFC 6749 §6) to the client's
// provider with the right client authentication — devicegate's own in
// proxy mode, so a device only ever talks to devicegate and never holds the
// provider's client secret; the device's in passthrough mode. The
// provider's refusal comes back as its RFC error.
//
// devicegate adds its own secret only for a refresh token it handed to
// this very client (RFC 9700 §4.14): the token's binding, recorded before
// delivery, must name the requesting client and its provider. Anything
// else is invalid_grant and never reaches the provider. The rate limits
// come first, per address and per client, before the binding is read.
func (s *server) refresh(w http.ResponseWriter, r *http.Request, form url.Values, c *config.Client, cred credentials, up Upstream) error {
	rt := form.Get("refresh_token")
	if rt == "" {
		return invalidRequest("refresh_token is required")
	}
	if form.Get("scope") != "" {
		// Narrowing on refresh is optional in RFC 6749 §6 and providers
		// differ; devicegate passes none rather than half-support it.
		return oauth.ErrInvalidScope.WithDescription("devicegate does not change scopes on refresh; omit scope")
	}
	if ok, retry := s.allow(r, "refresh", s.RateRefresh); !ok {
		return s.tooManyRefreshes(w, retry, "this address")
	}
	if ok, retry := s.Limiter.Allow(r.Context(), "refresh-client", s.RateRefreshClient, c.ID); !ok {
		return s.tooManyRefreshes(w, retry, "this client")
	}
	if len(rt) > 4096 {
		return oauth.ErrInvalidGrant.WithDescription("the refresh_token is not valid")
	}
	grant, err := s.Service.CheckRefresh(r.Context(), rt, c.ID, up.Identity())
	switch {
	case errors.Is(err, deviceflow.ErrRefreshUnbound), errors.Is(err, deviceflow.ErrRefreshWrongClient):
		// One answer for both, so a prober learns nothing about tokens
		// issued to other clients.
		return oauth.ErrInvalidGrant.WithDescription("this refresh_token was not issued to this client through devicegate, or has lapsed; sign in again with the device flow")
	case err != nil:
		return err
	}
	var t *upstream.Tokens
	if c.Passthrough() {
		t, err = up.RefreshWithSecret(r.Context(), cred.upstreamSecret, rt)
	} else {
		t, err = up.Refresh(r.Context(), rt)
	}
	if err != nil {
		return s.refreshFailed(w, r, c, cred, up, grant, err)
	}
	scopes, err := grantedScopes(c, t.Scope, grant.Scopes)
	if err != nil {
		// The provider widened the grant beyond what this client may hold:
		// the tokens are not handed over, and the binding is gone.
		s.Logger.WarnContext(r.Context(), "provider granted scopes beyond the client's allowed list on refresh; refused", "client_id", c.ID)
		_ = s.Service.Unbind(context.WithoutCancel(r.Context()), grant)
		return oauth.ErrInvalidGrant.WithDescription(err.Error() + "; sign in again")
	}
	if err := s.Service.Refreshed(context.WithoutCancel(r.Context()), grant, t.RefreshToken, scopes); err != nil {
		// The tokens are good and the provider may already have rotated
		// the old refresh token out: hand them over. The device's next
		// refresh is refused and it signs in again.
		s.Logger.ErrorContext(r.Context(), "could not record the refreshed token's binding", "err", err)
	}
	now := s.Now()
	oauth.WriteJSON(w, http.StatusOK, storedTokens(t, now).Response(now))
	return nil
}

// tooManyRefreshes is the answer past a refresh rate limit: 429 with
// Retry-After and slow_down, the code RFC 8628 gives for polling too fast
// (RFC 6749 has none for the token endpoint; README says so).
func (s *server) tooManyRefreshes(w http.ResponseWriter, retry time.Duration, who string) error {
	retryAfter(w, retry)
	return oauth.Error{Code: "slow_down", Status: http.StatusTooManyRequests,
		Description: "too many refresh requests from " + who + "; retry after " + strconv.Itoa(int(retry.Seconds()+0.5)) + " seconds"}
}

// refreshFailed turns the provider's refusal of a refresh into the
// device's answer.
func (s *server) refreshFailed(w http.ResponseWriter, r *http.Request, c *config.Client, cred credentials, up Upstream, grant *deviceflow.RefreshGrant, err error) error {
	s.Logger.WarnContext(r.Context(), "upstream refresh failed", "err", err)
	provider := up.DisplayName()
	var xe *upstream.ExchangeError
	if errors.As(err, &xe) {
		switch xe.Kind {
		case upstream.KindRejected:
			code := xe.Code
			if xe.ClientRejected() {
				if c.Passthrough() {
					// The device's secret was refused: its credentials, its
					// error, counted like a wrong secret of our own.
					if err := s.clientAuthFailed(r.Context(), s.clientIP(r), c); err != nil {
						return s.withChallenge(w, err)
					}
					return s.withChallenge(w, invalidClient(cred.basic, provider+" refused the client credentials the device presented"))
				}
				// devicegate's own credentials were refused: the operator's
				// mistake, not the device's. Saying invalid_grant would make
				// the device throw away a refresh token that is still good.
				s.Logger.ErrorContext(r.Context(), "the provider refused devicegate's client credentials; check the upstream client id and secret", "provider", provider)
				w.Header().Set("Retry-After", "60")
				return oauth.ErrTemporarilyUnavailable.WithDescription("devicegate's credentials at " + provider + " were refused; the refresh token is kept, try again later")
			}
			switch code {
			case "invalid_grant":
				// The provider says the token is dead: forget its binding.
				_ = s.Service.Unbind(context.WithoutCancel(r.Context()), grant)
			case "invalid_scope", "unauthorized_client", "invalid_request":
			default:
				code = "invalid_grant"
			}
			return oauth.Error{Code: code, Status: http.StatusBadRequest, Description: provider + " refused the refresh"}
		case upstream.KindMalformed:
			return oauth.Error{Code: "temporarily_unavailable", Status: http.StatusBadGateway, Description: provider + " answered the refresh with an unusable response"}
		}
	}
	w.Header().Set("Retry-After", "5")
	return oauth.ErrTemporarilyUnavailable.WithDescription(provider + " could not be reached; try again shortly")
}

// grantedScopes are the scopes a token was granted: the provider's scope
// answer, or when it gave none (RFC 6749 §5.1: then they are the ones
// requested) fallback. Scopes beyond the client's allowed list are an
// error: devicegate refuses tokens that hold more than the operator let
// this client have, rather than hand them over or quietly misreport them.
func grantedScopes(c *config.Client, answer string, fallback []string) ([]string, error) {
	scopes := strings.Fields(answer)
	if len(scopes) == 0 {
		return slices.Clone(fallback), nil
	}
	for _, sc := range scopes {
		if c.AllowsScope(sc) {
			continue
		}
		return nil, errors.New("the provider granted scope " + safeName(sc) + ", which this client may not hold")
	}
	return scopes, nil
}

// metadataDoc is the RFC 8414 authorization server metadata.
type metadataDoc struct {
	Issuer                            string   `json:"issuer"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// RFC 8414 §2: RFC 7009 revocation, authenticated as at the token
	// endpoint.
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	ServiceDocumentation                   string   `json:"service_documentation,omitempty"`
}

// metadata serves RFC 8414 metadata, so device libraries can discover the
// endpoints from the base URL alone.
func (s *server) metadata(w http.ResponseWriter, _ *http.Request) error {
	oauth.WriteJSON(w, http.StatusOK, metadataDoc{
		Issuer:                                 s.PublicURL,
		DeviceAuthorizationEndpoint:            s.PublicURL + "/api/authorize",
		TokenEndpoint:                          s.PublicURL + "/api/token",
		GrantTypesSupported:                    []string{GrantTypeDeviceCode, "refresh_token"},
		ResponseTypesSupported:                 []string{},
		TokenEndpointAuthMethodsSupported:      []string{"none", "client_secret_basic", "client_secret_post"},
		RevocationEndpoint:                     s.PublicURL + "/api/revoke",
		RevocationEndpointAuthMethodsSupported: []string{"none", "client_secret_basic", "client_secret_post"},
		ServiceDocumentation:                   "https://github.com/devicegate/devicegate",
	})
	return nil
}

// health reports liveness and whether the store answers.
func (s *server) health(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.Service.Ping(ctx); err != nil {
		s.Logger.WarnContext(r.Context(), "health: store unreachable", "err", err)
		w.Header().Set("Retry-After", "5")
		oauth.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": "unreachable"})
		return nil
	}
	// client is the address rate limits count this caller under, so a
	// deployment check can see from outside whether X-Forwarded-For is
	// read right: a spoofed prefix must not change it (SECURITY.md).
	oauth.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "store": "ok",
		"client": ratelimit.Key(ratelimit.ClientIP(r, s.ProxyHops))})
	return nil
}
