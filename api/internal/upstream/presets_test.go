package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestPresetsAgainstLookalikes runs each preset against an httptest server
// that answers the way that provider does, quirks included.
func TestPresetsAgainstLookalikes(t *testing.T) {
	tests := []struct {
		preset     string
		answer     string
		scopes     []string
		wantScope  string // the scope parameter on the authorize URL
		wantParams map[string]string
		wantPKCE   bool
		basic      bool // client authenticates with HTTP Basic
		gotScope   string
	}{
		{preset: "spotify", answer: `{"access_token":"a","token_type":"Bearer","scope":"user-read-private streaming","expires_in":3600,"refresh_token":"r"}`,
			scopes: []string{"user-read-private", "streaming"}, wantScope: "user-read-private streaming", wantPKCE: true, basic: true, gotScope: "user-read-private streaming"},
		{preset: "strava", answer: `{"token_type":"Bearer","expires_at":1568775134,"expires_in":21600,"refresh_token":"r","access_token":"a","athlete":{"id":134815,"username":"marianne_t"}}`,
			scopes: []string{"read", "activity:read_all"}, wantScope: "read,activity:read_all", wantParams: map[string]string{"approval_prompt": "auto"}},
		{preset: "discord", answer: `{"access_token":"a","token_type":"Bearer","expires_in":604800,"refresh_token":"r","scope":"identify email"}`,
			scopes: []string{"identify", "email"}, wantScope: "identify email", basic: true, gotScope: "identify email"},
		{preset: "dropbox", answer: `{"access_token":"a","expires_in":14400,"token_type":"bearer","scope":"files.metadata.read","refresh_token":"r","account_id":"dbid:x","uid":"1"}`,
			scopes: []string{"files.metadata.read"}, wantScope: "files.metadata.read", wantParams: map[string]string{"token_access_type": "offline"}, wantPKCE: true, basic: true, gotScope: "files.metadata.read"},
		{preset: "twitch", answer: `{"access_token":"a","expires_in":14346,"refresh_token":"r","scope":["channel:read:subscriptions","user:read:email"],"token_type":"bearer"}`,
			scopes: []string{"user:read:email"}, wantScope: "user:read:email", gotScope: "channel:read:subscriptions user:read:email"},
	}
	for _, tc := range tests {
		t.Run(tc.preset, func(t *testing.T) {
			pr, ok := Lookup(tc.preset)
			if !ok || pr.AuthURL == "" || pr.TokenURL == "" || pr.RedirectRules == "" || pr.DisplayName == "" {
				t.Fatalf("preset %+v", pr)
			}
			if !strings.HasPrefix(pr.AuthURL, "https://") || !strings.HasPrefix(pr.TokenURL, "https://") {
				t.Errorf("preset URLs must be https: %s %s", pr.AuthURL, pr.TokenURL)
			}
			var form url.Values
			var basicSeen bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				form = r.PostForm
				_, _, basicSeen = r.BasicAuth()
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tc.answer)
			}))
			defer srv.Close()
			pr.TokenURL = srv.URL
			p, err := New(Options{Preset: pr, ClientID: "cid", ClientSecret: "sec", RedirectURL: "https://gate.test/api/callback"})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(p.AuthCodeURL("st", "verifier-verifier-verifier-verifier-verif", tc.scopes))
			q := u.Query()
			if q.Get("scope") != tc.wantScope {
				t.Errorf("scope %q, want %q", q.Get("scope"), tc.wantScope)
			}
			if q.Has("code_challenge") != tc.wantPKCE {
				t.Errorf("PKCE on the authorize URL: %v, want %v", q.Has("code_challenge"), tc.wantPKCE)
			}
			for k, v := range tc.wantParams {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			tok, err := p.Exchange(context.Background(), "code", "verifier-verifier-verifier-verifier-verif")
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "a" || tok.RefreshToken != "r" || tok.ExpiresIn == 0 || tok.Scope != tc.gotScope {
				t.Errorf("tokens %+v", tok)
			}
			if basicSeen != tc.basic || (form.Get("client_secret") != "") == tc.basic {
				t.Errorf("client auth: basic %v, secret in body %q; want basic %v", basicSeen, form.Get("client_secret"), tc.basic)
			}
			if form.Has("code_verifier") != tc.wantPKCE {
				t.Errorf("code_verifier sent: %v, want %v", form.Has("code_verifier"), tc.wantPKCE)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	var srv *httptest.Server
	doc := map[string]any{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(doc)
	}))
	defer srv.Close()
	ctx := context.Background()
	doc = map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
		"code_challenge_methods_supported": []string{"plain", "S256"}, "token_endpoint_auth_methods_supported": []string{"client_secret_post"}}
	p, err := Discover(ctx, srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.AuthURL != srv.URL+"/auth" || p.TokenURL != srv.URL+"/token" || !p.PKCE || p.AuthStyle != oauth2.AuthStyleInParams || p.DisplayName != "127.0.0.1" {
		t.Errorf("preset %+v", p)
	}
	if p.RevocationURL != "" {
		t.Errorf("a revocation URL without revocation_endpoint: %q", p.RevocationURL)
	}
	for raw, want := range map[string]string{srv.URL + "/revoke": srv.URL + "/revoke", "javascript:alert(1)": "", "/relative": ""} {
		doc["revocation_endpoint"] = raw
		if p, err := Discover(ctx, srv.URL, nil); err != nil || p.RevocationURL != want {
			t.Errorf("revocation_endpoint %q: %q %v, want %q", raw, p.RevocationURL, err, want)
		}
	}
	delete(doc, "revocation_endpoint")
	doc["issuer"] = "https://someone-else.example"
	if _, err := Discover(ctx, srv.URL, nil); err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Errorf("issuer mismatch: %v", err)
	}
	delete(doc, "token_endpoint")
	doc["issuer"] = srv.URL
	if _, err := Discover(ctx, srv.URL, nil); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("no token endpoint: %v", err)
	}
	if _, err := Discover(ctx, srv.URL+"/missing", nil); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("404: %v", err)
	}
	if _, err := Discover(ctx, "http://127.0.0.1:1", nil); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable: %v", err)
	}
}

// TestScopeDescriptions: every preset describes its provider's scopes,
// each description is a short phrase a person reads on a phone (a capital
// first, no full stop, at most 70 characters), and each key is a scope
// token (RFC 6749 §3.3). Providers hand out copies.
func TestScopeDescriptions(t *testing.T) {
	for _, name := range Names() {
		p, _ := Lookup(name)
		if len(p.Scopes) == 0 {
			t.Errorf("%s: no scope descriptions", name)
		}
		for scope, d := range p.Scopes {
			if scope == "" || strings.ContainsAny(scope, " \"\\") || d == "" || len(d) > 70 ||
				strings.HasSuffix(d, ".") || strings.ToUpper(d[:1]) != d[:1] {
				t.Errorf("%s: %q: %q", name, scope, d)
			}
		}
	}
	sp, _ := Lookup("spotify")
	if sp.Scopes["user-read-currently-playing"] != "See the track playing right now" {
		t.Errorf("spotify: %q", sp.Scopes["user-read-currently-playing"])
	}
	p, err := New(Options{Preset: sp, ClientID: "c", ClientSecret: "s", RedirectURL: "http://127.0.0.1/cb"})
	if err != nil {
		t.Fatal(err)
	}
	p.ScopeDescriptions()["streaming"] = "changed"
	OpenIDScopes()["openid"] = "changed"
	if sp2, _ := Lookup("spotify"); sp2.Scopes["streaming"] == "changed" || OpenIDScopes()["openid"] == "changed" {
		t.Error("a caller changed the presets' descriptions")
	}
}

// TestDiscoveredIssuerGuardsTheCallback: discovery keeps the issuer and
// its RFC 9207 promise, so an oidc provider built from it refuses an
// authorization response naming another issuer, and — having promised
// iss — one naming none. (Without them CheckIssuer would wave every
// response through, and the callback's mix-up check would never run.)
func TestDiscoveredIssuerGuardsTheCallback(t *testing.T) {
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/auth", "token_endpoint": issuer + "/token",
			"code_challenge_methods_supported": []string{"S256"}, "authorization_response_iss_parameter_supported": true})
	}))
	defer srv.Close()
	issuer = srv.URL
	preset, err := Discover(context.Background(), issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Preset: preset, ClientID: "c", ClientSecret: "s", RedirectURL: "https://gate.test/api/callback", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for iss, want := range map[string]bool{issuer: true, "https://evil.test": false, "": false} {
		if got := p.CheckIssuer(iss); got != want {
			t.Errorf("CheckIssuer(%q) = %v, want %v", iss, got, want)
		}
	}
}
