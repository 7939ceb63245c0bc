package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

type fixture struct {
	srv    *httptest.Server
	s      *Server
	now    time.Time
	cfg    oauth2.Config
	client *http.Client
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.srv = httptest.NewUnstartedServer(nil)
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	var err error
	f.s, err = New(Options{BaseURL: f.srv.URL, ClientID: "gate", ClientSecret: "gate-secret", RedirectURI: "http://127.0.0.1:9/api/callback", Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = f.s.Handler()
	p := f.s.Preset()
	f.cfg = oauth2.Config{ClientID: "gate", ClientSecret: "gate-secret", RedirectURL: "http://127.0.0.1:9/api/callback",
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: p.AuthStyle}, Scopes: []string{"profile"}}
	jar, _ := cookiejar.New(nil)
	f.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

var inputRe = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// consent opens the authorize page and submits it with decision; it
// returns the redirect's query.
func (f *fixture) consent(t *testing.T, authURL, decision string) url.Values {
	t.Helper()
	res, err := f.client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "DEMO PROVIDER") {
		t.Fatalf("authorize page: %d %s", res.StatusCode, body)
	}
	form := url.Values{"decision": {decision}, "username": {"ada"}}
	for _, m := range inputRe.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], strings.ReplaceAll(m[2], "&#43;", "+"))
	}
	res, err = f.client.PostForm(f.srv.URL+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("decision: %d", res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), "http://127.0.0.1:9/api/callback?") {
		t.Fatalf("redirected to %s", loc)
	}
	return loc.Query()
}

func TestCodeFlowWithPKCEAndRefresh(t *testing.T) {
	f := newFixture(t)
	verifier := oauth2.GenerateVerifier()
	q := f.consent(t, f.cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)), "allow")
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("redirect %v", q)
	}
	ctx := context.Background()
	tok, err := f.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.Extra("scope") != "profile" {
		t.Errorf("token %+v", tok)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/userinfo", nil)
	tok.SetAuthHeader(req)
	res, _ := http.DefaultClient.Do(req)
	var info map[string]string
	json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if res.StatusCode != 200 || info["name"] != "ada" {
		t.Errorf("userinfo %d %v", res.StatusCode, info)
	}
	// Reusing the code fails and revokes what it issued.
	if _, err := f.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("code reused")
	}
	res, _ = http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("token still valid after code reuse: %d", res.StatusCode)
	}
}

func TestRefresh(t *testing.T) {
	f := newFixture(t)
	verifier := oauth2.GenerateVerifier()
	q := f.consent(t, f.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "allow")
	tok, err := f.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := f.cfg.TokenSource(context.Background(), tok).Token()
	if err != nil || fresh.AccessToken == tok.AccessToken {
		t.Errorf("refresh: %v", err)
	}
}

func TestDenyAndBadRequests(t *testing.T) {
	f := newFixture(t)
	verifier := oauth2.GenerateVerifier()
	q := f.consent(t, f.cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)), "deny")
	if q.Get("error") != "access_denied" || q.Get("state") != "s2" || q.Has("code") {
		t.Errorf("deny redirect %v", q)
	}
	ctx := context.Background()
	q = f.consent(t, f.cfg.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier)), "allow")
	if _, err := f.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Error("wrong verifier accepted")
	}
	q = f.consent(t, f.cfg.AuthCodeURL("s4", oauth2.S256ChallengeOption(verifier)), "allow")
	bad := f.cfg
	bad.ClientSecret = "wrong"
	if _, err := bad.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: %v", err)
	}
	q = f.consent(t, f.cfg.AuthCodeURL("s5", oauth2.S256ChallengeOption(verifier)), "allow")
	f.now = f.now.Add(2 * time.Minute)
	if _, err := f.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("expired code accepted")
	}

	for name, u := range map[string]string{
		"unregistered redirect": strings.Replace(f.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), url.QueryEscape("127.0.0.1:9"), "evil.example", 1),
		"no pkce":               f.cfg.AuthCodeURL("s"),
		"no state":              f.cfg.AuthCodeURL("", oauth2.S256ChallengeOption(verifier)),
	} {
		res, err := f.client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("%s: %d %q", name, res.StatusCode, res.Header.Get("Location"))
		}
	}
	// The decision form without its CSRF cookie is refused.
	res, err := http.PostForm(f.srv.URL+"/authorize", url.Values{"decision": {"allow"}, "csrf": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("csrf missing: %d", res.StatusCode)
	}
}
