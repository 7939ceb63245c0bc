package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/i18n"
	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/pages"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// Cookie names. Over HTTPS they carry the __Host- prefix, which browsers
// accept only with Secure, Path=/ and no Domain: no subdomain and no plain
// http page can plant or overwrite them. Plain http is allowed for loopback
// only, where the prefix is unavailable.
const (
	csrfCookie  = "devicegate-csrf"
	stateCookie = "devicegate-state"
	langCookie  = i18n.CookieName
)

// langLifetime is how long a chosen language is remembered.
const langLifetime = 365 * 24 * time.Hour

// csrfLifetime bounds how long a confirmation page stays submittable.
const csrfLifetime = time.Hour

// stateGrace is how long the state cookie outlives its code. A person can
// still be signing in at the provider when the code runs out; when the
// provider sends them back, the cookie must still be there for the callback
// to recognise this browser's own sign-in and say that the code expired,
// rather than that the sign-in cannot be matched to this browser. The
// longer life binds nothing new: the cookie only names a record and its
// state, and the callback refuses any record past its expiry whatever the
// cookie says.
const stateGrace = time.Hour

func (s *server) cookieName(base string) string {
	if s.secure {
		return "__Host-" + base
	}
	return base
}

func (s *server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(name),
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		Secure:   s.secure,
		HttpOnly: true,
		// Lax, not Strict: the provider's redirect back to the callback is a
		// cross-site top-level navigation, which must carry the state cookie.
		SameSite: http.SameSiteLaxMode,
	})
}

// setLangCookie remembers the language picked from the switcher. It holds
// no secret, but gets the same guards as the others (Secure and __Host- on
// https, Path=/, SameSite=Lax): no other site or subdomain can set it.
func (s *server) setLangCookie(w http.ResponseWriter, tag string) {
	s.setCookie(w, langCookie, tag, langLifetime)
}

func (s *server) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(s.cookieName(name))
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *server) randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.Rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// entry shows the code-entry page (/device; /api/device, where Static Web
// Apps rewrites /device to), in the person's language. A code in the query
// (a link to /device?user_code=…) is filled in, not looked up: the person
// still presses Continue.
func (s *server) entry(w http.ResponseWriter, r *http.Request) error {
	typed := r.URL.Query().Get("user_code")
	if len(typed) > 32 {
		typed = typed[:32]
	}
	// The switcher's links name /api/device, not /device: Static Web Apps
	// rewrites /device to the handler, and its CLI drops the query string
	// on the way (static-web-apps-cli routes-engine: the rewrite target
	// replaces req.url), so ?lang= would never arrive.
	here := "/api/device"
	if typed != "" {
		here += "?" + url.Values{"user_code": {typed}}.Encode()
	}
	return s.Pages.Entry(w, http.StatusOK, pages.Locale{Lang: langOf(r), Switch: here}, pages.EntryData{UserCode: typed})
}

// home is the start page (/; /api/home, where Static Web Apps rewrites /),
// in the person's language. Its switcher names /api/home for the reason
// entry's names /api/device.
func (s *server) home(w http.ResponseWriter, r *http.Request) error {
	return s.Pages.Home(w, http.StatusOK, pages.Locale{Lang: langOf(r), Switch: "/api/home"})
}

// notFound answers an address that holds nothing with a page in the
// person's language, status 404: the local server's and a function app's
// own, and on Static Web Apps /api/notfound, its navigationFallback. The
// switcher shows this page again in another language.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) error {
	return s.Pages.NotFound(w, http.StatusNotFound, pages.Locale{Lang: langOf(r), Switch: "/api/notfound"})
}

// verify handles the person's side: GET shows the confirmation for a code
// in the query (or sends them to the entry page), POST with action=allow or
// action=deny decides. The entry form sends the typed code by GET, and a
// POST with no action (an entry page from before that) is sent there with
// 303, so no page a person can go Back to is the answer to a POST: Back
// twice from the result would otherwise land on Chromium's
// ERR_CACHE_MISS ("Confirm Form Resubmission") instead of the confirmation.
//
// Every request here that names a code — showing its confirmation,
// allowing, denying, or a decision that fails its form check — counts
// against the one per-address budget (RateVerify) before the store is
// read, hits and misses alike. That is what bounds how many codes one
// address can try (RFC 8628 §5.1); SECURITY.md derives the bound.
func (s *server) verify(w http.ResponseWriter, r *http.Request) error {
	var code, action, csrf string
	if r.Method == http.MethodGet {
		// Present but empty is an empty entry form, answered with the
		// entry page and its error; absent is a bare link to this path.
		if !r.URL.Query().Has("user_code") {
			http.Redirect(w, r, "/device", http.StatusSeeOther)
			return nil
		}
		code = r.URL.Query().Get("user_code")
	} else {
		form, err := parseForm(w, r)
		if err != nil {
			return pageError{status: http.StatusBadRequest, kind: pages.ResultError, msg: pages.Msg("result.error.form")}
		}
		code, action, csrf = form.Get("user_code"), form.Get("action"), form.Get("csrf")
		switch action {
		case "":
			// Post/Redirect/Get: the GET it leads to looks the code up
			// (and counts against the budget), this answer does not.
			if len(code) > 32 {
				code = code[:32]
			}
			http.Redirect(w, r, "/api/verify?user_code="+url.QueryEscape(code), http.StatusSeeOther)
			return nil
		case "allow", "deny":
		default:
			return pageError{status: http.StatusBadRequest, kind: pages.ResultError, msg: pages.Msg("result.error.choice")}
		}
	}
	if ok, retry := s.allow(r, "verify", s.RateVerify); !ok {
		return pageError{status: http.StatusTooManyRequests, kind: pages.ResultTooMany, retry: retry}
	}
	// Past the deployment-wide ceiling on codes that matched nothing,
	// every address is held to SlowedVerify requests a window as well.
	if b, _ := s.Limiter.Blocked(limitCodeMisses, deploymentKey); b {
		slowed := ratelimit.Rule{Limit: s.slowedVerify(), Window: s.RateCodeMisses.Window}
		if ok, retry := s.allow(r, "verify-slowed", slowed); !ok {
			return pageError{status: http.StatusTooManyRequests, kind: pages.ResultTooMany, retry: retry}
		}
	}
	p, err := s.Service.Lookup(r.Context(), code)
	if errors.Is(err, deviceflow.ErrUnknownCode) {
		s.codeMissed(r)
	}
	if err != nil {
		return s.codeProblem(w, r, code, err)
	}
	if action == "" {
		return s.confirm(w, r, p)
	}
	if err := s.checkDecision(r, p.Record.ID, csrf); err != nil {
		// A decision that did not come from the page we showed this
		// browser for this code counts against the code; enough of them
		// lock it. The refusal stands even if counting fails.
		locked, ferr := s.Service.RecordFailure(r.Context(), p)
		switch {
		case locked:
			return errLocked
		case ferr != nil && !isCodeProblem(ferr):
			s.Logger.ErrorContext(r.Context(), "could not count a failed confirmation against its code", "err", ferr)
		}
		return err
	}
	if action == "deny" {
		if err := s.Service.Deny(r.Context(), p); err != nil {
			return s.codeProblem(w, r, code, err)
		}
		return s.redirectWithFlash(w, r, flash{Status: http.StatusOK, Kind: pages.ResultDenied})
	}
	b, err := s.Service.BeginAuthorization(r.Context(), p)
	if err != nil {
		return s.codeProblem(w, r, code, err)
	}
	up, err := s.upstreamFor(b.Record.ClientID)
	if err != nil {
		return errClientGone
	}
	left := b.Record.ExpiresAt.Sub(s.Now())
	s.setCookie(w, stateCookie, b.RecordID+"."+b.State, left+stateGrace)
	http.Redirect(w, r, up.AuthCodeURL(b.State, b.Verifier, b.Record.Scopes), http.StatusFound)
	return nil
}

// confirm shows the confirmation screen (RFC 8628 §5.4: the person must see
// what they approve, and be warned against codes sent by someone else).
// Its form token is bound to this browser and this one record.
func (s *server) confirm(w http.ResponseWriter, r *http.Request, p *deviceflow.Pending) error {
	token := s.cookie(r, csrfCookie)
	if !wellFormedToken(token) {
		var err error
		if token, err = s.randomToken(); err != nil {
			return err
		}
	}
	// Refresh the cookie every time, so its lifetime counts from this page.
	s.setCookie(w, csrfCookie, token, csrfLifetime)
	c, ok := s.Clients(p.Record.ClientID)
	up, err := s.upstreamFor(p.Record.ClientID)
	if !ok || err != nil {
		return errClientGone
	}
	loc := pages.Locale{Lang: langOf(r), Switch: "/api/verify?" + url.Values{"user_code": {deviceflow.FormatUserCode(p.UserCode)}}.Encode()}
	return s.Pages.Confirm(w, http.StatusOK, loc, pages.ConfirmData{
		ClientName:   c.Name,
		ClientID:     c.ID,
		ProviderName: up.DisplayName(),
		Scopes:       p.Record.Scopes,
		ScopeText:    c.ScopeDescriptions,
		UserCode:     deviceflow.FormatUserCode(p.UserCode),
		CSRFToken:    s.Service.DecisionToken(token, p.Record.ID),
		ExpiresIn:    p.Record.ExpiresAt.Sub(s.Now()),
	})
}

// isCodeProblem tells a code that is gone, used or locked — which the
// person is told about anyway — from a fault of the store.
func isCodeProblem(err error) bool {
	for _, e := range []error{deviceflow.ErrUnknownCode, deviceflow.ErrCodeExpired, deviceflow.ErrCodeUsed, deviceflow.ErrCodeDenied, deviceflow.ErrCodeLocked} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errClientGone is the page for a code whose device client was removed
// from the configuration after the code was issued.
var errClientGone = pageError{status: http.StatusConflict, kind: pages.ResultError,
	msg: pages.Msg("result.error.client_gone")}

func wellFormedToken(t string) bool {
	b, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil && len(b) == 32
}

// checkDecision guards the Allow/Deny form: the token must be the one the
// confirmation page for this very record showed this browser — derived
// from the browser's cookie, which another site can neither read nor set,
// and from the record, so a token from one code's page is refused for any
// other code — and a browser that names the Origin must name ours.
func (s *server) checkDecision(r *http.Request, recordID, token string) error {
	expired := pageError{status: http.StatusForbidden, kind: pages.ResultError,
		msg: pages.Msg("result.error.page_expired")}
	// "null" is what browsers send as the Origin of a form posted from a
	// page with Referrer-Policy: no-referrer (ours): it says nothing, and
	// Sec-Fetch-Site and the token still decide.
	// Origins are compared in their normal form (config.NormalizeOrigin),
	// so a public URL configured as https://Host:443 still matches the
	// https://host a browser sends.
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" && config.NormalizeOrigin(origin) != s.publicOrigin {
		return expired
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return expired
	}
	cookie := s.cookie(r, csrfCookie)
	if !wellFormedToken(cookie) || !s.Service.CheckDecisionToken(cookie, recordID, token) {
		return expired
	}
	return nil
}

// codeProblem turns a lookup failure into what the person should see: the
// entry page again for a mistyped or unknown code, a result page otherwise.
func (s *server) codeProblem(w http.ResponseWriter, r *http.Request, typed string, err error) error {
	if len(typed) > 32 {
		typed = typed[:32]
	}
	entry := func(status int, msg pages.Text) error {
		return s.Pages.Entry(w, status, pages.Locale{Lang: langOf(r), Switch: "/api/device"}, pages.EntryData{UserCode: typed, Error: msg})
	}
	switch {
	case errors.Is(err, deviceflow.ErrInvalidUserCode):
		if strings.TrimSpace(typed) == "" {
			return entry(http.StatusBadRequest, pages.Msg("entry.error.empty"))
		}
		return entry(http.StatusBadRequest, pages.Msg("entry.error.invalid", "example", "BCDF-GHJK"))
	case errors.Is(err, deviceflow.ErrUnknownCode):
		return entry(http.StatusNotFound, pages.Msg("entry.error.unknown"))
	case errors.Is(err, deviceflow.ErrCodeExpired):
		return pageError{status: http.StatusGone, kind: pages.ResultExpired}
	case errors.Is(err, deviceflow.ErrCodeUsed):
		return pageError{status: http.StatusConflict, kind: pages.ResultUsed}
	case errors.Is(err, deviceflow.ErrCodeDenied):
		return pageError{status: http.StatusConflict, kind: pages.ResultDenied, msg: pages.Msg("result.denied.already")}
	case errors.Is(err, deviceflow.ErrCodeLocked):
		return errLocked
	}
	return err
}

// SlowedVerify is how many requests naming a user code each address (each
// network of it, scaled as ratelimit.Prefixes says) may make per window
// while the deployment-wide ceiling on failed lookups is crossed: enough
// for one person to open their code, retype it once and press Allow.
const SlowedVerify = 3

// slowedVerify is SlowedVerify, or the verify limit when that is lower.
func (s *server) slowedVerify() int {
	if s.RateVerify.Off() {
		return SlowedVerify
	}
	return min(SlowedVerify, s.RateVerify.Limit)
}

// The deployment-wide count of user codes that matched nothing.
const (
	limitCodeMisses = "code-misses"
	deploymentKey   = "deployment"
)

// codeMissed counts a user code that matched nothing against the
// deployment-wide ceiling (RateCodeMisses), in the shared store so that
// every instance sees one count. Crossing it is logged as an error, once
// a window: someone is guessing codes from many addresses.
func (s *server) codeMissed(r *http.Request) {
	already, _ := s.Limiter.Blocked(limitCodeMisses, deploymentKey)
	s.Limiter.Fail(r.Context(), limitCodeMisses, s.RateCodeMisses, deploymentKey)
	if now, retry := s.Limiter.Blocked(limitCodeMisses, deploymentKey); now && !already {
		// Once per window and instance: the first miss this instance
		// sees past the ceiling.
		s.Logger.ErrorContext(r.Context(), "ceiling of failed user-code lookups crossed: someone is guessing codes from many addresses; every address is slowed until the window ends",
			"limit", s.RateCodeMisses.String(), "slowed_to_per_address", s.slowedVerify(), "until", retry.Round(time.Second).String())
	}
}

// errLocked is the page for a code locked after failed attempts.
var errLocked = pageError{status: http.StatusForbidden, kind: pages.ResultDenied,
	msg: pages.Msg("result.denied.locked")}

// callback is where the provider sends the person back (RFC 6749 §4.1.2).
// The state must match the one bound to this browser's cookie and the one
// stored on the record; then the code is exchanged, with the PKCE verifier.
func (s *server) callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	// A sign-in at /devices comes back here too (one redirect URI per
	// provider to register): this browser's login cookie holding the
	// answer's state says it is that, not a device's.
	if up, state, ok := s.accountLogin(r); ok {
		return s.accountCallback(w, r, up, state)
	}
	// The state cookie is left in place (it outlives the code by
	// stateGrace): when the person goes Back to the provider and through it
	// again, the callback can tell them their sign-in already finished, and
	// when the code ran out while they were at the provider, that it
	// expired — instead of failing to match it to this browser.
	cookie := s.cookie(r, stateCookie)
	recordID, cookieState, ok := strings.Cut(cookie, ".")
	if !ok || recordID == "" || cookieState == "" {
		return pageError{status: http.StatusBadRequest, kind: pages.ResultError,
			msg: pages.Msg("result.error.no_state")}
	}
	state := q.Get("state")
	if subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) != 1 {
		return pageError{status: http.StatusBadRequest, kind: pages.ResultError,
			msg: pages.Msg("result.error.state_mismatch")}
	}
	claim, err := s.Service.ClaimCallback(r.Context(), recordID, state)
	if errors.Is(err, deviceflow.ErrCodeUsed) {
		// This browser's own sign-in, already finished: say so.
		return s.Pages.Result(w, http.StatusOK, pages.Locale{Lang: langOf(r)}, pages.ResultData{Kind: pages.ResultSuccess,
			Message: pages.Msg("result.success.already")})
	}
	if errors.Is(err, deviceflow.ErrStateMismatch) {
		if locked, _ := s.Service.RecordCallbackFailure(r.Context(), recordID); locked {
			return errLocked
		}
	}
	if err != nil {
		return s.callbackProblem(err)
	}
	c, ok := s.Clients(claim.Record.ClientID)
	up, uerr := s.upstreamFor(claim.Record.ClientID)
	if !ok || uerr != nil {
		if err := s.Service.Fail(r.Context(), claim, "the device client is no longer configured"); err != nil {
			return s.callbackProblem(err)
		}
		return errClientGone
	}
	provider := up.DisplayName()
	// Mix-up defence (RFC 9700 §4.4): the answer must arrive at this
	// provider's own callback and, where the provider names itself
	// (RFC 9207 iss), name this provider.
	if !sameCallback(r.URL.Path, up.RedirectURL()) || !up.CheckIssuer(q.Get("iss")) {
		s.Logger.WarnContext(r.Context(), "authorization response from another provider than the record's; refused", "path", r.URL.Path)
		if err := s.Service.Fail(r.Context(), claim, "the sign-in came back from another provider than "+provider); err != nil {
			return s.callbackProblem(err)
		}
		return pageError{status: http.StatusBadRequest, kind: pages.ResultError,
			msg: pages.Msg("result.error.mixup")}
	}
	if e := q.Get("error"); e != "" {
		reason := provider + " refused the authorization (" + oauthCode(e) + ")"
		kind, msg := pages.ResultError, pages.Msg("result.error.provider_refused", "provider", provider)
		if e == "access_denied" {
			reason = "the user denied access at " + provider
			kind, msg = pages.ResultDenied, pages.Text{}
		}
		if err := s.Service.Fail(r.Context(), claim, reason); err != nil {
			return s.callbackProblem(err)
		}
		return s.Pages.Result(w, http.StatusOK, pages.Locale{Lang: langOf(r)}, pages.ResultData{Kind: kind, Message: msg, Device: c.Name, Provider: provider})
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		if err := s.Service.Fail(r.Context(), claim, provider+" returned no authorization code"); err != nil {
			return s.callbackProblem(err)
		}
		return pageError{status: http.StatusBadGateway, kind: pages.ResultError, msg: pages.Msg("result.error.no_code", "provider", provider)}
	}
	if c.Passthrough() {
		// The device holds the secret: keep the code (sealed) for the
		// exchange its next poll makes.
		if err := s.Service.CompleteWithCode(context.WithoutCancel(r.Context()), claim, code); err != nil {
			return s.callbackProblem(err)
		}
		// The person's part is done, but the sign-in is not: the exchange
		// can still fail at the poll, so the page does not promise it.
		return s.Pages.Result(w, http.StatusOK, pages.Locale{Lang: langOf(r)}, pages.ResultData{Kind: pages.ResultSuccess,
			Message: pages.Msg("result.success.passthrough", "provider", provider)})
	}
	tokens, err := up.Exchange(r.Context(), code, claim.Verifier)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "upstream token exchange failed", "err", err)
		if ferr := s.Service.Fail(context.WithoutCancel(r.Context()), claim, exchangeReason(provider, err)); ferr != nil {
			return s.callbackProblem(ferr)
		}
		return pageError{status: http.StatusBadGateway, kind: pages.ResultError,
			msg: pages.Msg("result.error.exchange", "provider", provider)}
	}
	if err := s.bindTokens(r.Context(), c, up, tokens, claim.Record.Scopes); err != nil {
		var oe oauth.Error
		reason, msg := "devicegate could not record the sign-in; start again", pages.Msg("result.error.record")
		if errors.As(err, &oe) {
			reason, msg = oe.Description, pages.Msg("result.error.too_much_scope", "provider", provider)
		} else {
			s.Logger.ErrorContext(r.Context(), "binding the refresh token failed", "err", err)
		}
		if ferr := s.Service.Fail(context.WithoutCancel(r.Context()), claim, reason); ferr != nil {
			return s.callbackProblem(ferr)
		}
		return pageError{status: http.StatusBadGateway, kind: pages.ResultError, msg: msg}
	}
	err = s.Service.Complete(context.WithoutCancel(r.Context()), claim, storedTokens(tokens, s.Now()))
	if err != nil {
		return s.callbackProblem(err)
	}
	return s.Pages.Result(w, http.StatusOK, pages.Locale{Lang: langOf(r)}, pages.ResultData{Kind: pages.ResultSuccess, Device: c.Name, Provider: provider, DevicesLink: up.CanNameAccount()})
}

// exchangeReason is the access_denied description the device gets when the
// exchange failed: which side failed, never a secret.
func exchangeReason(provider string, err error) string {
	var xe *upstream.ExchangeError
	if errors.As(err, &xe) {
		switch xe.Kind {
		case upstream.KindRejected:
			if xe.Code != "" {
				return provider + " rejected the token exchange (" + oauthCode(xe.Code) + ")"
			}
			return provider + " rejected the token exchange"
		case upstream.KindMalformed:
			return provider + " answered the token exchange with an unusable response"
		}
	}
	return provider + " could not be reached to complete the token exchange"
}

// oauthCode passes an error code from the provider on only if it has the
// shape of one (RFC 6749 §4.1.2.1), so a hostile redirect cannot put
// arbitrary text into what the device shows.
func oauthCode(e string) string {
	if len(e) > 64 {
		return "invalid error code"
	}
	for _, r := range e {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return "invalid error code"
		}
	}
	return e
}

// sameCallback reports whether a request to path arrived at the callback
// redirectURL names.
func sameCallback(path, redirectURL string) bool {
	u, err := url.Parse(redirectURL)
	if err != nil {
		return false
	}
	i := strings.LastIndex(u.Path, "/api/callback")
	return i >= 0 && u.Path[i:] == path
}

func (s *server) callbackProblem(err error) error {
	switch {
	case errors.Is(err, deviceflow.ErrStateMismatch):
		return pageError{status: http.StatusBadRequest, kind: pages.ResultError,
			msg: pages.Msg("result.error.replaced")}
	case errors.Is(err, deviceflow.ErrCallbackUsed), errors.Is(err, deviceflow.ErrCodeUsed):
		return pageError{status: http.StatusConflict, kind: pages.ResultUsed}
	case errors.Is(err, deviceflow.ErrCodeLocked):
		return errLocked
	case errors.Is(err, deviceflow.ErrCodeDenied):
		return pageError{status: http.StatusConflict, kind: pages.ResultDenied, msg: pages.Msg("result.denied.ended")}
	case errors.Is(err, deviceflow.ErrCodeExpired), errors.Is(err, deviceflow.ErrUnknownCode):
		// The browser's own state cookie got us here, so this is the
		// person whose code ran out while they were at the provider.
		return pageError{status: http.StatusGone, kind: pages.ResultExpired,
			msg: pages.Msg("result.expired.at_provider")}
	}
	return err
}
