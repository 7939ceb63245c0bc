package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// startOIDCProvider runs e2e/node/oidc-provider.mjs (oidc-provider from
// npm) on a free loopback port with one confidential client whose only
// redirect URI is redirectURI, until the test ends. It returns the issuer.
func startOIDCProvider(t *testing.T, clientID, clientSecret, redirectURI string) string {
	t.Helper()
	needNode(t, "oidc-provider")
	cmd := exec.Command("node", "node/oidc-provider.mjs", fmt.Sprint(freePort(t)), clientID, "", redirectURI)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "OP_CLIENT_SECRET=" + clientSecret}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	start(t, cmd, 5*time.Second)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if issuer, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- issuer
			}
		}
	}()
	select {
	case issuer := <-ready:
		return issuer
	case <-time.After(2 * time.Minute): // against hanging only: node starts slowly on a loaded machine
		t.Fatalf("oidc-provider did not start:\n%s", logs.String())
	}
	return ""
}

// newOIDCProviderStack is devicegate in front of oidc-provider, configured
// as the oidc upstream (endpoints from discovery) or the generic one
// (explicit URLs), PKCE on either way.
func newOIDCProviderStack(t *testing.T, kind string) (*stack, string) {
	t.Helper()
	s := newStackAt(t)
	secret := rand.Text()
	issuer := startOIDCProvider(t, "devicegate", secret, s.base+"/api/callback")
	s.readDiscovery(issuer + "/.well-known/openid-configuration")
	env := s.baseEnv()
	maps.Copy(env, map[string]string{
		"DEVICEGATE_UPSTREAM":               kind,
		"DEVICEGATE_UPSTREAM_NAME":          "oidc-provider",
		"DEVICEGATE_UPSTREAM_CLIENT_ID":     "devicegate",
		"DEVICEGATE_UPSTREAM_CLIENT_SECRET": secret,
	})
	switch kind {
	case "oidc":
		env["DEVICEGATE_UPSTREAM_ISSUER"] = issuer
	case "generic":
		env["DEVICEGATE_UPSTREAM_AUTH_URL"] = s.discover.AuthorizationEndpoint
		env["DEVICEGATE_UPSTREAM_TOKEN_URL"] = s.discover.TokenEndpoint
		env["DEVICEGATE_UPSTREAM_PKCE"] = "true"
	}
	s.startDevicegate(env, secret)
	return s, secret
}

// activeAtProvider asks oidc-provider's introspection endpoint (RFC 7662),
// as devicegate's client, whether refreshToken is still alive there.
func activeAtProvider(t *testing.T, s *stack, secret, refreshToken string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.discover.IntrospectionEndpoint,
		strings.NewReader(url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("devicegate", secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m struct {
		Active *bool `json:"active"`
	}
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != http.StatusOK || m.Active == nil {
		t.Fatalf("introspection: HTTP %d, %v", res.StatusCode, err)
	}
	return *m.Active
}

// revokeThroughDevicegate is the device's RFC 7009 request to devicegate's
// advertised revocation endpoint, as client tv.
func revokeThroughDevicegate(t *testing.T, s *stack, refreshToken string) {
	t.Helper()
	res, err := http.Get(s.base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	json.NewDecoder(res.Body).Decode(&m)
	res.Body.Close()
	if m.RevocationEndpoint != s.base+"/api/revoke" {
		t.Fatalf("revocation_endpoint %q", m.RevocationEndpoint)
	}
	res, err = http.PostForm(m.RevocationEndpoint, url.Values{"client_id": {"tv"}, "token": {refreshToken}, "token_type_hint": {"refresh_token"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: HTTP %d", res.StatusCode)
	}
}

// signInAtOIDCProvider: the person, on oidc-provider's own pages after
// Allow, signs in (any login and password) and then either gives consent
// (Continue) or cancels there. It returns the text of devicegate's result.
func (b *browser) signInAtOIDCProvider(login string, consent bool) string {
	b.t.Helper()
	b.run("sign in", chromedp.WaitVisible(`input[name=login]`, chromedp.ByQuery),
		chromedp.SendKeys(`input[name=login]`, login, chromedp.ByQuery), chromedp.SendKeys(`input[name=password]`, "any password", chromedp.ByQuery))
	b.shot("provider-login")
	b.run("submit login", chromedp.Click(`button.login-submit`, chromedp.ByQuery), chromedp.WaitReady(`input[name=prompt][value=consent]`, chromedp.ByQuery))
	b.shot("provider-consent")
	if consent {
		b.run("continue", chromedp.Click(`button.login-submit`, chromedp.ByQuery), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	} else {
		b.run("cancel", chromedp.Click(`a[href*="/abort"]`, chromedp.ByQuery), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	}
	b.shot("result")
	return b.text()
}

// TestOIDCProvider runs devicegate against oidc-provider, the second real
// upstream, configured once as oidc and once as generic: the happy path
// with a refresh token and a refresh through devicegate, then a person who
// cancels at the provider. oidc-provider is set to require PKCE of every
// client, so each sign-in also proves devicegate's S256 challenge.
func TestOIDCProvider(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"oidc", "generic"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s, secret := newOIDCProviderStack(t, kind)

			ctx, cfg, da := begin(t, s, 270*time.Second)
			b := newBrowser(t, "oidc-provider-"+kind, 390, 844)
			b.run("open", openLink(da.VerificationURIComplete, `button[value=allow]`)...)
			if text := b.text(); !strings.Contains(text, "Continue to oidc-provider") || !strings.Contains(text, "Stay connected while you are away") {
				t.Errorf("confirmation: %q", text)
			}
			b.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery))
			if text := b.signInAtOIDCProvider("alice", true); !strings.Contains(text, "E2E TV is now connected to your oidc-provider account") {
				t.Errorf("result page: %q", text)
			}
			tok, err := cfg.DeviceAccessToken(ctx, da)
			if err != nil {
				t.Fatalf("DeviceAccessToken: %v", err)
			}
			s.remember(tok.AccessToken, tok.RefreshToken)
			if info := s.userinfo(tok.AccessToken); info["sub"] != "alice" {
				t.Errorf("userinfo: %v", info)
			}
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token though offline_access was asked for")
			}
			fresh, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
			if err != nil || fresh.AccessToken == tok.AccessToken {
				t.Fatalf("refresh through devicegate: %v", err)
			}
			s.remember(fresh.AccessToken, fresh.RefreshToken)
			s.userinfo(fresh.AccessToken)

			// The device revokes its refresh token (RFC 7009) through
			// devicegate: its next refresh there is invalid_grant, and with
			// the oidc upstream (revocation_endpoint from discovery) the
			// token is dead at oidc-provider too. The generic upstream has
			// no revocation URL: the token is dead through devicegate only.
			rt := fresh.RefreshToken
			if rt == "" {
				rt = tok.RefreshToken
			}
			if !activeAtProvider(t, s, secret, rt) {
				t.Fatal("the refresh token is not active at the provider before the revocation")
			}
			revokeThroughDevicegate(t, s, rt)
			_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}).Token()
			var rerr *oauth2.RetrieveError
			if !errors.As(err, &rerr) || rerr.ErrorCode != "invalid_grant" {
				t.Errorf("refresh after revoking: %v, want invalid_grant", err)
			}
			if alive := activeAtProvider(t, s, secret, rt); alive != (kind == "generic") {
				t.Errorf("%s upstream: active at the provider after revoking = %v", kind, alive)
			}

			// Another person, with no session at the provider yet, cancels there.
			ctx, cfg, da = begin(t, s, 180*time.Second)
			b = newBrowser(t, "oidc-provider-"+kind+"-deny", 390, 844)
			b.run("open", openLink(da.VerificationURIComplete, `button[value=allow]`)...)
			b.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery))
			if text := b.signInAtOIDCProvider("alice", false); !strings.Contains(text, "Access denied") || !strings.Contains(text, "Nothing was shared with E2E TV") {
				t.Errorf("cancelled at the provider: %q", text)
			}
			_, err = cfg.DeviceAccessToken(ctx, da)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "access_denied" {
				t.Errorf("device got %v, want access_denied", err)
			}
		})
	}
}
