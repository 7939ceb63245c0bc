package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// ErrNoRevocation: the provider has no revocation endpoint.
var ErrNoRevocation = errors.New("upstream: the provider has no revocation endpoint")

// CanRevoke reports whether the provider has an RFC 7009 revocation
// endpoint.
func (p *Provider) CanRevoke() bool { return p.preset.RevocationURL != "" }

// Revoke asks the provider to revoke refreshToken (RFC 7009 §2.1, with
// token_type_hint=refresh_token), authenticating as devicegate's app the
// way it does at the token endpoint. A 200 is success whether or not the
// provider knew the token (§2.2). Errors are *ExchangeError, carrying no
// token.
func (p *Provider) Revoke(ctx context.Context, refreshToken string) error {
	return p.revoke(ctx, p.cfg.ClientSecret, refreshToken)
}

// RevokeWithSecret is Revoke with the secret a passthrough device
// presented.
func (p *Provider) RevokeWithSecret(ctx context.Context, secret, refreshToken string) error {
	return p.revoke(ctx, secret, refreshToken)
}

func (p *Provider) revoke(ctx context.Context, secret, token string) error {
	if p.preset.RevocationURL == "" {
		return ErrNoRevocation
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}
	inParams := p.preset.AuthStyle == oauth2.AuthStyleInParams
	if inParams {
		form.Set("client_id", p.cfg.ClientID)
		if secret != "" {
			form.Set("client_secret", secret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.preset.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return &ExchangeError{Kind: KindMalformed, Err: errors.New("upstream: bad revocation URL")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !inParams {
		// RFC 6749 §2.3.1: both parts form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(secret))
	}
	res, err := p.client.Do(req)
	if err != nil {
		// The error text names the URL only (the token is in the body).
		return &ExchangeError{Kind: KindUnavailable, Err: err}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	switch {
	case res.StatusCode == http.StatusOK:
		return nil
	case res.StatusCode >= 500:
		return &ExchangeError{Kind: KindUnavailable, Status: res.StatusCode}
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return &ExchangeError{Kind: KindRejected, Status: res.StatusCode, Code: safeCode(e.Error)}
}
