package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestRevoke: an RFC 7009 request — token and token_type_hint in the form,
// the client authenticated as the preset says (Basic with form-encoded
// parts, or in the body), the passthrough secret when given — and the
// provider's answers sorted like a token exchange's, with no token in any
// error text.
func TestRevoke(t *testing.T) {
	var got struct {
		form               url.Values
		basicID, basicPass string
		basic              bool
	}
	status, body := http.StatusOK, ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got.form = r.PostForm
		got.basicID, got.basicPass, got.basic = r.BasicAuth()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	provider := func(style oauth2.AuthStyle, revocation string) *Provider {
		p, err := New(Options{Preset: Preset{Name: "x", AuthURL: srv.URL + "/auth", TokenURL: srv.URL + "/token", AuthStyle: style, RevocationURL: revocation},
			ClientID: "dg:1", ClientSecret: "s&cret", RedirectURL: "http://127.0.0.1/cb"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	const rt = "RT-secret-value"

	if err := provider(oauth2.AuthStyleInHeader, "").Revoke(ctx, rt); !errors.Is(err, ErrNoRevocation) {
		t.Errorf("no revocation endpoint: %v", err)
	}
	p := provider(oauth2.AuthStyleInHeader, srv.URL+"/revoke")
	if !p.CanRevoke() || p.Revoke(ctx, rt) != nil {
		t.Fatal("revoke in header failed")
	}
	// RFC 6749 §2.3.1: the Basic parts are form-encoded first.
	if !got.basic || got.basicID != "dg%3A1" || got.basicPass != "s%26cret" || got.form.Get("client_secret") != "" ||
		got.form.Get("token") != rt || got.form.Get("token_type_hint") != "refresh_token" {
		t.Errorf("header style sent %v basic=%v %q", got.form, got.basic, got.basicID)
	}
	p = provider(oauth2.AuthStyleInParams, srv.URL+"/revoke")
	if err := p.RevokeWithSecret(ctx, "device-secret", rt); err != nil {
		t.Fatal(err)
	}
	if got.basic || got.form.Get("client_id") != "dg:1" || got.form.Get("client_secret") != "device-secret" {
		t.Errorf("params style with the passthrough secret sent %v basic=%v", got.form, got.basic)
	}
	for _, tc := range []struct {
		status   int
		body     string
		kind     ErrorKind
		rejected bool
	}{
		{http.StatusUnauthorized, `{"error":"invalid_client"}`, KindRejected, true},
		{http.StatusBadRequest, `{"error":"unsupported_token_type"}`, KindRejected, false},
		{http.StatusServiceUnavailable, ``, KindUnavailable, false},
	} {
		status, body = tc.status, tc.body
		err := p.Revoke(ctx, rt)
		var xe *ExchangeError
		if !errors.As(err, &xe) || xe.Kind != tc.kind || xe.ClientRejected() != tc.rejected {
			t.Errorf("HTTP %d: %v", tc.status, err)
		}
		if err != nil && (strings.Contains(err.Error(), rt) || strings.Contains(err.Error(), "s&cret")) {
			t.Errorf("an error text carries a secret: %v", err)
		}
	}
}
