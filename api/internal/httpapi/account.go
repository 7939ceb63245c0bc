package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/pages"
)

// Cookies of the person's own device list. The login cookie binds a
// sign-in at the provider to this browser (its state); the session cookie
// is what the sign-in proves: one account, for AccountSessionLifetime.
const (
	accountLoginCookie   = "devicegate-account-login"
	accountSessionCookie = "devicegate-account"
)

// accountProviders are the deployment's providers that name accounts, in
// a stable order (by Identity, no repeats): the index of one is what the
// sign-in form and the login cookie carry.
func (s *server) accountProviders() []Upstream {
	seen := map[string]bool{}
	var out []Upstream
	add := func(u Upstream) {
		if u != nil && u.CanNameAccount() && !seen[u.Identity()] {
			seen[u.Identity()] = true
			out = append(out, u)
		}
	}
	add(s.Upstream)
	for _, u := range s.Upstreams {
		add(u)
	}
	slices.SortFunc(out, func(a, b Upstream) int { return strings.Compare(a.Identity(), b.Identity()) })
	return out
}

// errDevicesForm is the answer to a /devices form that did not come from
// the page devicegate showed this browser's session.
var errDevicesForm = pageError{status: http.StatusForbidden, kind: pages.ResultError,
	msg: pages.Msg("devices.error.form")}

// devices is the person's own device list, /devices (RFC 8628 says
// nothing of it; it is devicegate's). GET shows the sign-in, or the
// signed-in account's devices. POST action=signin starts the sign-in at
// a provider; confirm asks "Disconnect X?"; disconnect removes X's
// binding; signout ends the session. Every POST but signin needs the
// session and its form token; all of them pass the same-origin checks.
// Each request counts against the person's-side budget (RateVerify),
// before the store is read: a list reads every binding.
func (s *server) devices(w http.ResponseWriter, r *http.Request) error {
	if ok, retry := s.allow(r, "devices", s.RateVerify); !ok {
		return pageError{status: http.StatusTooManyRequests, kind: pages.ResultTooMany, retry: retry}
	}
	sess, _ := s.Service.CheckAccountSession(s.cookie(r, accountSessionCookie))
	if r.Method == http.MethodGet {
		switch {
		case sess == nil:
			return s.devicesSignIn(w, r)
		case r.URL.Query().Has("device"):
			// "Disconnect X?" is a GET (the device's id is no secret), so
			// Back from its outcome lands on it, not on a POST's answer.
			return s.devicesConfirm(w, r, sess, r.URL.Query().Get("device"))
		}
		return s.devicesList(w, r, sess)
	}
	form, err := parseForm(w, r)
	if err != nil || !s.sameOrigin(r) {
		return errDevicesForm
	}
	action := form.Get("action")
	if action == "signin" {
		return s.accountSignIn(w, r, form.Get("provider"))
	}
	if sess == nil || !s.Service.CheckFormToken(sess, form.Get("csrf")) {
		return errDevicesForm
	}
	switch action {
	case "signout":
		s.setCookie(w, accountSessionCookie, "", -time.Second)
		http.Redirect(w, r, "/devices", http.StatusSeeOther)
		return nil
	case "confirm":
		// A page from before the confirmation became a GET.
		http.Redirect(w, r, "/api/devices?"+url.Values{"device": {form.Get("device")}}.Encode(), http.StatusSeeOther)
		return nil
	case "disconnect":
		d, err := s.Service.DisconnectAccountDevice(r.Context(), sess, form.Get("device"))
		if err != nil {
			return s.deviceProblem(err)
		}
		name := s.deviceRow(*d).Name
		s.Logger.InfoContext(r.Context(), "a person disconnected one of their devices", "client_id", d.ClientID, "device", d.ID)
		return s.redirectWithFlash(w, r, flash{Status: http.StatusOK, Done: name})
	}
	return pageError{status: http.StatusBadRequest, kind: pages.ResultError, msg: pages.Msg("devices.error.choice")}
}

// devicesConfirm asks "Disconnect X?" for one of the session's devices.
func (s *server) devicesConfirm(w http.ResponseWriter, r *http.Request, sess *deviceflow.AccountSession, id string) error {
	d, err := s.Service.AccountDevice(r.Context(), sess, id)
	if err != nil {
		return s.deviceProblem(err)
	}
	row := s.deviceRow(*d)
	return s.Pages.Devices(w, http.StatusOK, pages.Locale{Lang: langOf(r)}, pages.DevicesData{View: pages.DevicesConfirm, Device: &row, CSRFToken: s.Service.FormToken(sess)})
}

// sameOrigin applies the checks of checkDecision that need no token: a
// browser naming the form's Origin or Sec-Fetch-Site must name this site.
func (s *server) sameOrigin(r *http.Request) bool {
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" && config.NormalizeOrigin(origin) != s.publicOrigin {
		return false
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin" || site == "none"
}

// deviceProblem: a device id that names none of this account's devices —
// gone already, or another account's, told apart from neither.
func (s *server) deviceProblem(err error) error {
	if errors.Is(err, deviceflow.ErrNoSuchDevice) {
		return pageError{status: http.StatusNotFound, kind: pages.ResultError,
			msg: pages.Msg("devices.error.gone")}
	}
	return err
}

func (s *server) devicesSignIn(w http.ResponseWriter, r *http.Request) error {
	var ps []pages.DevicesProvider
	for i, u := range s.accountProviders() {
		ps = append(ps, pages.DevicesProvider{Index: i, Name: u.DisplayName()})
	}
	return s.Pages.Devices(w, http.StatusOK, pages.Locale{Lang: langOf(r), Switch: "/devices"}, pages.DevicesData{View: pages.DevicesSignIn, Providers: ps})
}

func (s *server) devicesList(w http.ResponseWriter, r *http.Request, sess *deviceflow.AccountSession) error {
	ds, err := s.Service.AccountDevices(r.Context(), sess)
	if err != nil {
		return err
	}
	rows := make([]pages.DeviceRow, 0, len(ds))
	provider := ""
	for _, d := range ds {
		rows = append(rows, s.deviceRow(d))
	}
	for _, u := range s.accountProviders() {
		if len(ds) > 0 && u.Identity() == ds[0].Upstream || len(s.accountProviders()) == 1 {
			provider = u.DisplayName()
		}
	}
	if provider == "" {
		provider = "provider"
	}
	return s.Pages.Devices(w, http.StatusOK, pages.Locale{Lang: langOf(r), Switch: "/devices"}, pages.DevicesData{View: pages.DevicesList, ProviderName: provider,
		Devices: rows, CSRFToken: s.Service.FormToken(sess)})
}

// deviceRow is a device as the person sees it: the client's name (its id
// when it was since removed from the configuration), and when it was
// connected and last used (its last refresh, else its sign-in).
func (s *server) deviceRow(d deviceflow.Device) pages.DeviceRow {
	name := d.ClientID
	if c, ok := s.Clients(d.ClientID); ok && c.Name != "" {
		name = c.Name
	}
	last := d.Refreshed
	if last.IsZero() {
		last = d.SignedIn
	}
	return pages.DeviceRow{ID: d.ID, Name: name, Connected: d.SignedIn, LastUsed: last}
}

// accountSignIn sends the person to the provider to sign in (authorization
// code with PKCE, RFC 7636; the provider's AccountScopes alone), with a
// fresh state bound to this browser by the login cookie.
func (s *server) accountSignIn(w http.ResponseWriter, r *http.Request, provider string) error {
	ps := s.accountProviders()
	i, err := strconv.Atoi(provider)
	if err != nil || i < 0 || i >= len(ps) {
		return pageError{status: http.StatusBadRequest, kind: pages.ResultError, msg: pages.Msg("devices.error.choice")}
	}
	state, err := s.randomToken()
	if err != nil {
		return err
	}
	s.setCookie(w, accountLoginCookie, strconv.Itoa(i)+"."+state, deviceflow.AccountSessionLifetime)
	up := ps[i]
	http.Redirect(w, r, up.AuthCodeURL(state, s.Service.AccountVerifier(state), up.AccountScopes()), http.StatusSeeOther)
	return nil
}

// accountLogin returns the provider and state of this browser's /devices
// sign-in when the callback's state is its state: the callback is then
// this sign-in's, not a device's.
func (s *server) accountLogin(r *http.Request) (Upstream, string, bool) {
	idx, state, ok := strings.Cut(s.cookie(r, accountLoginCookie), ".")
	if !ok || !wellFormedToken(state) || subtle.ConstantTimeCompare([]byte(state), []byte(r.URL.Query().Get("state"))) != 1 {
		return nil, "", false
	}
	ps := s.accountProviders()
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= len(ps) {
		return nil, "", false
	}
	return ps[i], state, true
}

// accountCallback finishes a /devices sign-in: the answer must come to
// this provider's own callback (RFC 9700 §4.4) and name it (RFC 9207);
// the code is exchanged with the PKCE verifier, the provider names the
// account, and the session cookie — new, so nothing planted before the
// sign-in survives it — says so. The tokens are not kept: a refresh token
// is revoked at once where the provider can.
func (s *server) accountCallback(w http.ResponseWriter, r *http.Request, up Upstream, state string) error {
	q := r.URL.Query()
	s.setCookie(w, accountLoginCookie, "", -time.Second) // one use
	retry := pageError{status: http.StatusBadGateway, kind: pages.ResultError,
		msg: pages.Msg("devices.error.signin", "provider", up.DisplayName())}
	if !sameCallback(r.URL.Path, up.RedirectURL()) || !up.CheckIssuer(q.Get("iss")) {
		return pageError{status: http.StatusBadRequest, kind: pages.ResultError,
			msg: pages.Msg("devices.error.mixup")}
	}
	if q.Get("error") != "" || q.Get("code") == "" || len(q.Get("code")) > 4096 {
		return pageError{status: http.StatusOK, kind: pages.ResultDenied,
			msg: pages.Msg("devices.error.cancelled")}
	}
	ctx := r.Context()
	t, err := up.Exchange(ctx, q.Get("code"), s.Service.AccountVerifier(state))
	if err != nil {
		s.Logger.WarnContext(ctx, "upstream token exchange failed (device list sign-in)", "err", err)
		return retry
	}
	account, err := up.Account(ctx, t.AccessToken)
	if t.RefreshToken != "" && up.CanRevoke() {
		if rerr := up.Revoke(context.WithoutCancel(ctx), t.RefreshToken); rerr != nil {
			s.Logger.WarnContext(ctx, "could not revoke the device list sign-in's refresh token at the provider", "err", rerr)
		}
	}
	if err != nil {
		s.Logger.WarnContext(ctx, "the provider did not name the account (device list sign-in)", "err", err)
		return retry
	}
	cookie, err := s.Service.NewAccountSession(up.Identity(), account)
	if err != nil {
		return err
	}
	s.setCookie(w, accountSessionCookie, cookie, deviceflow.AccountSessionLifetime)
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
	return nil
}

// deviceAccount asks the provider whose account a device's tokens belong
// to, for its binding; "" when the provider names none or fails, which
// only leaves the device off the person's list.
func (s *server) deviceAccount(ctx context.Context, up Upstream, accessToken string) string {
	if !up.CanNameAccount() {
		return ""
	}
	a, err := up.Account(ctx, accessToken)
	if err != nil {
		s.Logger.InfoContext(ctx, "the provider did not name the device's account; it is not listed at /devices", "err", err)
		return ""
	}
	return a
}
