package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAccount: the account URL is asked with the token as a Bearer
// credential; a string or integer field is the identifier; anything else,
// a refusal or a missing field is ErrNoAccount; a 5xx is unavailable.
func TestAccount(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"str":  {200, `{"sub":"248289761001","name":"x"}`},
		"num":  {200, `{"sub":12345}`},
		"obj":  {200, `{"sub":{"a":1}}`},
		"none": {200, `{"id":"x"}`},
		"deny": {401, `{}`},
		"down": {503, ``},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.Header.Get("Authorization")[len("Bearer "):]]
		if !ok || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	defer srv.Close()
	p, err := New(Options{Preset: Preset{AuthURL: "https://a.test/auth", TokenURL: "https://a.test/token", AccountURL: srv.URL, AccountField: "sub"},
		ClientID: "c", RedirectURL: "https://d.test/api/callback"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if a, err := p.Account(ctx, "str"); a != "248289761001" || err != nil {
		t.Errorf("string: %q %v", a, err)
	}
	if a, err := p.Account(ctx, "num"); a != "12345" || err != nil {
		t.Errorf("number: %q %v", a, err)
	}
	for _, tok := range []string{"obj", "none", "deny"} {
		if _, err := p.Account(ctx, tok); !errors.Is(err, ErrNoAccount) {
			t.Errorf("%s: %v, want ErrNoAccount", tok, err)
		}
	}
	var xe *ExchangeError
	if _, err := p.Account(ctx, "down"); !errors.As(err, &xe) || xe.Kind != KindUnavailable {
		t.Errorf("5xx: %v", err)
	}
	if s, ok := Lookup("spotify"); !ok || s.AccountURL != "https://api.spotify.com/v1/me" || s.AccountField != "id" {
		t.Error("the spotify preset does not name its profile endpoint")
	}
	if s, _ := Lookup("strava"); (&Provider{preset: s}).CanNameAccount() {
		t.Error("strava names accounts without an account URL")
	}
}
