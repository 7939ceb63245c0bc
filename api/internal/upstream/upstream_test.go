package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// testTimeout bounds an exchange in these tests: generous, because a
// loopback exchange on a loaded machine can take far longer than one on an
// idle one. Only TestExchangeFailures' hang case, which must be cut off,
// uses a short one.
const testTimeout = 30 * time.Second

func newProvider(t *testing.T, tokenURL string, mod func(*Preset)) *Provider {
	t.Helper()
	return newProviderTimeout(t, tokenURL, mod, testTimeout, nil)
}

func newProviderTimeout(t *testing.T, tokenURL string, mod func(*Preset), timeout time.Duration, client *http.Client) *Provider {
	t.Helper()
	pr, _ := Lookup("generic")
	pr.DisplayName, pr.AuthURL, pr.TokenURL = "Acme", "https://acme.test/authorize", tokenURL
	pr.AuthStyle = oauth2.AuthStyleInHeader
	if mod != nil {
		mod(&pr)
	}
	p, err := New(Options{Preset: pr, ClientID: "cid", ClientSecret: "top-secret", RedirectURL: "https://gate.test/api/callback", Timeout: timeout, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deadlineTransport notes the deadline of the request it carries.
type deadlineTransport struct {
	mu  sync.Mutex
	d   time.Time
	set bool
}

func (d *deadlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	d.d, d.set = r.Context().Deadline()
	d.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (d *deadlineTransport) deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.d, d.set
}

func TestPresets(t *testing.T) {
	sp, ok := Lookup("Spotify")
	if !ok || sp.AuthURL != "https://accounts.spotify.com/authorize" || sp.TokenURL != "https://accounts.spotify.com/api/token" || !sp.PKCE || sp.RedirectRules == "" {
		t.Errorf("spotify preset %+v", sp)
	}
	if g, ok := Lookup("generic"); !ok || g.AuthURL != "" {
		t.Errorf("generic preset %+v", g)
	}
	if _, ok := Lookup("myspace"); ok {
		t.Error("unknown preset found")
	}
	if n := Names(); len(n) < 6 || !slices.Contains(n, "generic") || !slices.Contains(n, "twitch") || !slices.IsSorted(n) {
		t.Errorf("names %v", n)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{Preset: Preset{AuthURL: "nope", TokenURL: "https://x/t"}, RedirectURL: "https://x/cb"}); err == nil ||
		!strings.Contains(err.Error(), "authorize URL") || !strings.Contains(err.Error(), "client id") {
		t.Errorf("got %v", err)
	}
}

func TestAuthCodeURL(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Preset)
		scopes []string
		want   map[string]string
		absent []string
	}{
		{"pkce and scopes", nil, []string{"a", "b"}, map[string]string{
			"response_type": "code", "client_id": "cid", "redirect_uri": "https://gate.test/api/callback",
			"scope": "a b", "state": "st", "code_challenge_method": "S256", "code_challenge": Challenge("verifier-verifier-verifier-verifier-verif"),
		}, nil},
		{"no pkce", func(p *Preset) { p.PKCE = false }, []string{"a"}, map[string]string{"scope": "a"}, []string{"code_challenge", "code_challenge_method"}},
		{"no scopes", nil, nil, map[string]string{"state": "st"}, []string{"scope"}},
		{"comma separator", func(p *Preset) { p.ScopeSeparator = "," }, []string{"read", "activity:read"}, map[string]string{"scope": "read,activity:read"}, nil},
		// OpenID Connect Core §11: offline_access needs prompt=consent.
		{"offline access", nil, []string{"openid", "offline_access"}, map[string]string{"prompt": "consent", "scope": "openid offline_access"}, nil},
		{"no offline access", nil, []string{"openid"}, nil, []string{"prompt"}},
		{"preset's own prompt", func(p *Preset) { p.AuthParams = map[string]string{"prompt": "login"} }, []string{"offline_access"}, map[string]string{"prompt": "login"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, "https://acme.test/token", tc.mod)
			u, err := url.Parse(p.AuthCodeURL("st", "verifier-verifier-verifier-verifier-verif", tc.scopes))
			if err != nil || u.Host != "acme.test" {
				t.Fatalf("%v %v", u, err)
			}
			q := u.Query()
			for k, v := range tc.want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			for _, k := range tc.absent {
				if q.Has(k) {
					t.Errorf("%s present", k)
				}
			}
		})
	}
	if c := Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); c != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("RFC 7636 appendix B challenge: %s", c)
	}
}

func TestExchange(t *testing.T) {
	var got url.Values
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got, gotAuth = r.PostForm, r.Header.Get("Authorization")
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("content type %q", ct)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"AT","token_type":"Bearer","refresh_token":"RT","expires_in":3600,"scope":"a b","id_token":"IDT","athlete":{"id":1}}`)
	}))
	defer srv.Close()
	p := newProvider(t, srv.URL, nil)
	tok, err := p.Exchange(context.Background(), "the-code", "the-verifier")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "AT" || tok.RefreshToken != "RT" || tok.Scope != "a b" || tok.IDToken != "IDT" || tok.TokenType != "Bearer" ||
		tok.ExpiresIn != time.Hour || time.Until(tok.Expiry) < 59*time.Minute {
		t.Errorf("tokens %+v", tok)
	}
	if got.Get("grant_type") != "authorization_code" || got.Get("code") != "the-code" || got.Get("code_verifier") != "the-verifier" || got.Get("redirect_uri") != "https://gate.test/api/callback" {
		t.Errorf("form %v", got)
	}
	if !strings.HasPrefix(gotAuth, "Basic ") || got.Has("client_secret") {
		t.Errorf("client auth: header %q form %v", gotAuth, got)
	}

	// In-params client authentication puts the secret in the body.
	p = newProvider(t, srv.URL, func(pr *Preset) { pr.AuthStyle = oauth2.AuthStyleInParams })
	if _, err := p.Exchange(context.Background(), "c", "v"); err != nil {
		t.Fatal(err)
	}
	if gotAuth != "" || got.Get("client_secret") != "top-secret" || got.Get("client_id") != "cid" {
		t.Errorf("in-params auth: header %q form %v", gotAuth, got)
	}
}

func TestExchangeFailures(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		kind   ErrorKind
		code   string
	}{
		{"invalid_grant", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"the-code is spent"}`)
		}, KindRejected, "invalid_grant"},
		{"401 no body", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) }, KindRejected, ""},
		{"500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom the-code", 500) }, KindUnavailable, ""},
		{"503", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, KindUnavailable, ""},
		{"html 200", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>hi</html>")
		}, KindMalformed, ""},
		{"json without token", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"token_type":"Bearer"}`)
		}, KindMalformed, ""},
		{"broken json", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":`)
		}, KindMalformed, ""},
		// Hangs for a minute unless the exchange gives up: only a timeout
		// can make this KindUnavailable (after a minute the empty 200 would
		// be KindMalformed), however loaded the machine is. That it is the
		// provider's 300 ms timeout is read from the request's deadline,
		// not from a wall-clock measurement.
		{"hang", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // the server sees the client leave only once the body is read
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		}, KindUnavailable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tc.handle))
			defer srv.Close()
			timeout, rt := testTimeout, &deadlineTransport{}
			if tc.name == "hang" {
				timeout = 300 * time.Millisecond
			}
			p := newProviderTimeout(t, srv.URL, nil, timeout, &http.Client{Transport: rt})
			before := time.Now()
			_, err := p.Exchange(context.Background(), "the-code", "the-verifier")
			after := time.Now()
			var xe *ExchangeError
			if !errors.As(err, &xe) || xe.Kind != tc.kind || xe.Code != tc.code {
				t.Fatalf("got %#v (%v), want kind %v code %q", xe, err, tc.kind, tc.code)
			}
			// The deadline was set during the call, timeout from its start.
			if d, ok := rt.deadline(); !ok || d.Before(before.Add(timeout)) || d.After(after.Add(timeout)) {
				t.Errorf("request deadline %v (set: %v), want %s after a moment between %v and %v", d, ok, timeout, before, after)
			}
			for _, secret := range []string{"the-code", "the-verifier", "top-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
	// Nothing listening at all.
	p := newProvider(t, "http://127.0.0.1:1/token", nil)
	if _, err := p.Exchange(context.Background(), "c", "v"); err == nil {
		t.Error("exchange with no server succeeded")
	} else if xe := (*ExchangeError)(nil); !errors.As(err, &xe) || xe.Kind != KindUnavailable {
		t.Errorf("no server: %v", err)
	}
}

// TestWithSecret: the passthrough forms authenticate with the secret given
// for that request, and leave the provider's own configuration alone.
func TestWithSecret(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, sec, _ := r.BasicAuth()
		seen = append(seen, sec)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at","token_type":"Bearer","refresh_token":"rt2"}`)
	}))
	defer srv.Close()
	p := newProvider(t, srv.URL, nil)
	ctx := context.Background()
	if _, err := p.ExchangeWithSecret(ctx, "device-secret", "code", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.RefreshWithSecret(ctx, "device-secret-2", "rt"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exchange(ctx, "code", "v"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"device-secret", "device-secret-2", "top-secret"}) {
		t.Errorf("secrets presented: %v", seen)
	}
	if p.Timeout() != testTimeout {
		t.Errorf("timeout %v", p.Timeout())
	}
}

// TestCheckIssuer: RFC 9207 — a known issuer must match a given iss; a
// provider that promised iss must send it; an unknown issuer checks
// nothing.
func TestCheckIssuer(t *testing.T) {
	tests := []struct {
		name     string
		issuer   string
		promised bool
		iss      string
		want     bool
	}{
		{"unknown issuer, no iss", "", false, "", true},
		{"unknown issuer, some iss", "", false, "https://elsewhere.test", true},
		{"known issuer, matching iss", "https://idp.test", false, "https://idp.test", true},
		{"known issuer, other iss", "https://idp.test", false, "https://evil.test", false},
		{"known issuer, no iss, not promised", "https://idp.test", false, "", true},
		{"known issuer, no iss, promised", "https://idp.test", true, "", false},
		{"promised and matching", "https://idp.test", true, "https://idp.test", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, "https://acme.test/token", func(pr *Preset) { pr.Issuer, pr.IssParameter = tc.issuer, tc.promised })
			if got := p.CheckIssuer(tc.iss); got != tc.want {
				t.Errorf("CheckIssuer(%q) = %v", tc.iss, got)
			}
		})
	}
}

// TestRegistration: each preset says what its provider's app settings ask
// for — Strava a callback domain (the host alone), the others the whole
// redirect URI — under the name the provider's pages use.
func TestRegistration(t *testing.T) {
	const redirect = "https://devicegate.example.net/api/callback/strava"
	want := map[string][3]string{
		"spotify": {"Redirect URIs", "redirect_uri", redirect},
		"strava":  {"Authorization Callback Domain", "callback_domain", "devicegate.example.net"},
		"discord": {"OAuth2 → Redirects", "redirect_uri", redirect},
		"dropbox": {"Redirect URIs", "redirect_uri", redirect},
		"twitch":  {"OAuth Redirect URLs", "redirect_uri", redirect},
		"generic": {"redirect URI", "redirect_uri", redirect},
	}
	for _, name := range Names() {
		w, ok := want[name]
		if !ok {
			t.Errorf("preset %s: no expectation here; say what its provider asks for", name)
			continue
		}
		preset, _ := Lookup(name)
		if preset.AuthURL == "" {
			preset.AuthURL, preset.TokenURL = "https://id.example/authorize", "https://id.example/token"
		}
		p, err := New(Options{Preset: preset, ClientID: "c", ClientSecret: "s", RedirectURL: redirect})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if setting, key, value := p.Registration(); [3]string{setting, key, value} != w {
			t.Errorf("%s: Registration() = %q %q %q, want %q", name, setting, key, value, w)
		}
	}
}
