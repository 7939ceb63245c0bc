package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// discovery is the part of OpenID Connect Discovery 1.0 (and RFC 8414)
// devicegate needs.
type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// IssParameterSupported is RFC 9207's promise that every authorization
	// response carries iss.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// RevocationEndpoint is RFC 7009's endpoint (RFC 8414 §2, OIDC
	// Session/Discovery registries).
	RevocationEndpoint string `json:"revocation_endpoint"`
}

// Discover builds a preset for any OpenID provider from its issuer's
// discovery document, read once at start. It fails, saying why, when the
// document cannot be had or does not describe the issuer.
func Discover(ctx context.Context, issuer string, hc *http.Client) (Preset, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Preset{}, fmt.Errorf("upstream: issuer %q is not a URL", issuer)
	}
	res, err := hc.Do(req)
	if err != nil {
		return Preset{}, fmt.Errorf("upstream: cannot reach the discovery document at %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return Preset{}, fmt.Errorf("upstream: the discovery document at %s answered HTTP %d", u, res.StatusCode)
	}
	var d discovery
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&d); err != nil {
		return Preset{}, fmt.Errorf("upstream: the discovery document at %s is not JSON", u)
	}
	if strings.TrimRight(d.Issuer, "/") != strings.TrimRight(issuer, "/") {
		return Preset{}, fmt.Errorf("upstream: the discovery document names issuer %q, not %q", d.Issuer, issuer)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" {
		return Preset{}, fmt.Errorf("upstream: the discovery document at %s lacks the authorization or token endpoint", u)
	}
	style := oauth2.AuthStyleInHeader // the default of OIDC Core §9
	if m := d.TokenEndpointAuthMethodsSupported; len(m) > 0 && !slices.Contains(m, "client_secret_basic") && slices.Contains(m, "client_secret_post") {
		style = oauth2.AuthStyleInParams
	}
	return Preset{
		Name:          "oidc",
		DisplayName:   HostOf(issuer),
		AuthURL:       d.AuthorizationEndpoint,
		TokenURL:      d.TokenEndpoint,
		PKCE:          slices.Contains(d.CodeChallengeMethodsSupported, "S256"),
		AuthStyle:     style,
		RedirectRules: "Register <public URL>/api/callback as a redirect URI of a confidential web client.",
		Issuer:        d.Issuer,
		IssParameter:  d.IssParameterSupported,
		RevocationURL: revocationURL(d.RevocationEndpoint),
		Scopes:        openIDScopes,
	}, nil
}

// HostOf is the host name of a provider URL (no scheme, port or path),
// what people see of an issuer that has no display name; a string that is
// not a URL is returned as it is.
func HostOf(raw string) string {
	if p, err := url.Parse(raw); err == nil && p.Hostname() != "" {
		return p.Hostname()
	}
	return raw
}

// revocationURL keeps a discovered revocation endpoint only if it is an
// absolute http(s) URL; anything else means the provider has none usable.
func revocationURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") {
		return raw
	}
	return ""
}
