package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
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

// parseForm reads an application/x-www-form-urlencoded body, as RFC 6749
// §3.2 and RFC 8628 §3.1 require, and rejects repeated parameters (RFC 6749
// §3.1: parameters must not be included more than once). Only the body
// counts: parameters in the query string are not read.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("the request body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, oauth.Error{Code: "invalid_request", Description: "the request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, invalidRequest("the request body is not valid form encoding")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, invalidRequest("parameter " + safeName(k) + " is given more than once")
		}
	}
	return r.PostForm, nil
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
func (s *server) authenticateClient(r *http.Request, form url.Values) (*config.Client, error) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, invalidClient(true, "the Basic credentials are not form-encoded correctly")
		}
	}
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")
	if hasBasic && postSecret != "" {
		return nil, invalidRequest("use one client authentication method, not both Basic and client_secret")
	}
	id, secret := postID, postSecret
	if hasBasic {
		if postID != "" && postID != basicID {
			return nil, invalidClient(true, "client_id does not match the Basic credentials")
		}
		id, secret = basicID, basicSecret
	}
	if id == "" {
		return nil, invalidRequest("client_id is required")
	}
	c, ok := s.Clients(id)
	if !ok {
		return nil, invalidClient(hasBasic, "unknown client")
	}
	if c.Public() {
		return c, nil
	}
	if secret == "" {
		return nil, invalidClient(hasBasic, "client authentication is required for this client")
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, invalidClient(hasBasic, "client authentication failed")
	}
	return c, nil
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
	c, err := s.authenticateClient(r, form)
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
		DeviceCode:              a.DeviceCode,
		UserCode:                uc,
		VerificationURI:         s.PublicURL + "/device",
		VerificationURIComplete: s.PublicURL + "/device?user_code=" + url.QueryEscape(uc),
		ExpiresIn:               int64(a.ExpiresIn / time.Second),
		Interval:                int64(a.Interval / time.Second),
	})
	return nil
}

// withChallenge adds WWW-Authenticate for a challenge error and returns it.
func (s *server) withChallenge(w http.ResponseWriter, err error) error {
	var c challenge
	if errors.As(err, &c) {
		w.Header().Set("WWW-Authenticate", `Basic realm="devicegate", charset="UTF-8"`)
		return c.err
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
	gt := form.Get("grant_type")
	switch gt {
	case "":
		return invalidRequest("grant_type is required")
	case GrantTypeDeviceCode, "refresh_token":
	default:
		return oauth.ErrUnsupportedGrantType.WithDescription("supported grant types: " + GrantTypeDeviceCode + ", refresh_token")
	}
	c, err := s.authenticateClient(r, form)
	if err != nil {
		return s.withChallenge(w, err)
	}
	if gt == "refresh_token" {
		return s.refresh(w, r, form)
	}
	dc := form.Get("device_code")
	if dc == "" {
		return invalidRequest("device_code is required")
	}
	if len(dc) > 512 {
		return oauth.ErrInvalidGrant.WithDescription("unknown or already used device_code")
	}
	tok, _, err := s.Service.Poll(r.Context(), c.ID, dc)
	if err != nil {
		return err
	}
	oauth.WriteJSON(w, http.StatusOK, tok)
	return nil
}

// refresh passes a refresh_token grant (RFC 6749 §6) to the provider with
// devicegate's own client authentication, so a device only ever talks to
// devicegate and never holds the provider's client secret. The provider's
// refusal comes back as its RFC error.
func (s *server) refresh(w http.ResponseWriter, r *http.Request, form url.Values) error {
	rt := form.Get("refresh_token")
	if rt == "" {
		return invalidRequest("refresh_token is required")
	}
	if len(rt) > 4096 {
		return oauth.ErrInvalidGrant.WithDescription("the refresh_token is not valid")
	}
	if form.Get("scope") != "" {
		// Narrowing on refresh is optional in RFC 6749 §6 and providers
		// differ; devicegate passes none rather than half-support it.
		return oauth.ErrInvalidScope.WithDescription("devicegate does not change scopes on refresh; omit scope")
	}
	t, err := s.Upstream.Refresh(r.Context(), rt)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "upstream refresh failed", "err", err)
		var xe *upstream.ExchangeError
		if errors.As(err, &xe) {
			switch xe.Kind {
			case upstream.KindRejected:
				code := xe.Code
				switch code {
				case "invalid_grant", "invalid_scope", "unauthorized_client", "invalid_request":
				default:
					code = "invalid_grant"
				}
				return oauth.Error{Code: code, Status: http.StatusBadRequest, Description: s.Upstream.DisplayName() + " refused the refresh"}
			case upstream.KindMalformed:
				return oauth.Error{Code: "temporarily_unavailable", Status: http.StatusBadGateway, Description: s.Upstream.DisplayName() + " answered the refresh with an unusable response"}
			}
		}
		w.Header().Set("Retry-After", "5")
		return oauth.ErrTemporarilyUnavailable.WithDescription(s.Upstream.DisplayName() + " could not be reached; try again shortly")
	}
	resp := deviceflow.TokenResponse{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Scope:        t.Scope,
		ExpiresIn:    int64(t.ExpiresIn / time.Second),
	}
	if resp.TokenType == "" {
		resp.TokenType = "Bearer"
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// metadataDoc is the RFC 8414 authorization server metadata.
type metadataDoc struct {
	Issuer                            string   `json:"issuer"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ServiceDocumentation              string   `json:"service_documentation,omitempty"`
}

// metadata serves RFC 8414 metadata, so device libraries can discover the
// endpoints from the base URL alone.
func (s *server) metadata(w http.ResponseWriter, _ *http.Request) error {
	oauth.WriteJSON(w, http.StatusOK, metadataDoc{
		Issuer:                            s.PublicURL,
		DeviceAuthorizationEndpoint:       s.PublicURL + "/api/authorize",
		TokenEndpoint:                     s.PublicURL + "/api/token",
		GrantTypesSupported:               []string{GrantTypeDeviceCode, "refresh_token"},
		ResponseTypesSupported:            []string{},
		TokenEndpointAuthMethodsSupported: []string{"none", "client_secret_basic", "client_secret_post"},
		ServiceDocumentation:              "https://github.com/devicegate/devicegate",
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
	oauth.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "store": "ok"})
	return nil
}
