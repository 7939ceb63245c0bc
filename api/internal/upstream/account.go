package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// CanNameAccount says devicegate knows where this provider names the
// account a token belongs to (Preset.AccountURL).
func (p *Provider) CanNameAccount() bool {
	return p.preset.AccountURL != "" && p.preset.AccountField != ""
}

// AccountScopes are the fewest scopes whose token can read the account's
// identifier: what the person's own sign-in at /devices asks for.
func (p *Provider) AccountScopes() []string { return slices.Clone(p.preset.AccountScopes) }

// ErrNoAccount: the provider did not name the account (no account URL
// configured, the token may not read it, or the answer lacks the field).
var ErrNoAccount = errors.New("upstream: the provider did not name the account")

// Account asks the provider whose account accessToken belongs to: a GET
// of the account URL with the token as a Bearer credential (RFC 6750
// §2.1), over the same client as the token endpoint. The identifier is
// the answer's AccountField, a string or a JSON number (some providers
// use numbers); anything else is ErrNoAccount. Being an answer to our own
// request to the configured URL with a token the provider just issued,
// it needs no signature: OIDC Core §5.3.2 requires the sub of userinfo
// to be trusted only as far as the channel, which is this one. The token
// never appears in an error.
func (p *Provider) Account(ctx context.Context, accessToken string) (string, error) {
	if !p.CanNameAccount() || accessToken == "" {
		return "", ErrNoAccount
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.preset.AccountURL, nil)
	if err != nil {
		return "", fmt.Errorf("upstream: the account URL is unusable: %w", ErrNoAccount)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	res, err := p.client.Do(req)
	if err != nil {
		return "", &ExchangeError{Kind: KindUnavailable, Err: err}
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode >= 500:
		return "", &ExchangeError{Kind: KindUnavailable, Status: res.StatusCode}
	case res.StatusCode != http.StatusOK:
		return "", fmt.Errorf("upstream: the account URL answered HTTP %d: %w", res.StatusCode, ErrNoAccount)
	}
	var body map[string]json.RawMessage
	dec := json.NewDecoder(io.LimitReader(res.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		return "", fmt.Errorf("upstream: the account URL's answer is not a JSON object: %w", ErrNoAccount)
	}
	raw, ok := body[p.preset.AccountField]
	if !ok {
		return "", fmt.Errorf("upstream: the account URL's answer has no %q: %w", p.preset.AccountField, ErrNoAccount)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" && len(s) <= 1024 {
		return s, nil
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&n) == nil {
		if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return n.String(), nil
		}
	}
	return "", fmt.Errorf("upstream: the account URL's %q is not a string or an integer: %w", p.preset.AccountField, ErrNoAccount)
}
