package deviceflow_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
)

// opened decodes a sealed text value as records keep it, checks that the
// encoding alone does not reveal plain, and opens it with the sealer for
// the record id.
func (f *fixture) opened(t *testing.T, stored, recordID, plain string) string {
	t.Helper()
	raw, err := base64.RawStdEncoding.DecodeString(stored)
	if err != nil {
		t.Fatalf("stored value is not base64: %v", err)
	}
	if bytes.Contains(raw, []byte(plain)) || strings.Contains(stored, plain) {
		t.Fatalf("the stored value reveals the secret without the key")
	}
	out, err := f.sealer.Open(raw, []byte(recordID))
	if err != nil {
		t.Fatalf("the stored value does not open with the sealer: %v", err)
	}
	return string(out)
}

// TestSealedValuesOpenOnlyWithTheSealer: a passthrough client's
// authorization code is stored sealed with its PKCE verifier — decoding it
// gives nothing, opening it with the sealer and the record's id gives both
// back. (Plain base64 in its place fails here; TestSecretsAreSealedAtRest
// checks the verifier of an ordinary flow the same way.)
func TestSealedValuesOpenOnlyWithTheSealer(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "kiosk", nil)
	const code = "provider-authorization-code-0123456789"
	verifier, id := f.approveCode(t, a, code)
	rec, _ := f.store.Get(ctx, id)
	if got := f.opened(t, rec.AuthCode, rec.ID, code); !strings.Contains(got, code) || !strings.Contains(got, verifier) {
		t.Error("the sealed authorization code does not hold the code and its verifier")
	}
}

// TestDeliveredOnceAndRemembered: the record is marked delivered in the
// same compare-and-swap that hands the tokens out, and stays as a
// tombstone holding nothing secret: the next polls are refused with
// invalid_grant, the user code answers "already used" until the code
// expires. The record is kept, not deleted: the flow never calls Delete,
// so a deleted record (which would turn "already used" into "unknown
// code") is noticed here.
func TestDeliveredOnceAndRemembered(t *testing.T) {
	f := newFixture(t)
	fs := faulty.Wrap(f.store)
	f.rebuild(t, fs)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	f.approve(t, a)
	tok, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode)
	if err != nil || tok.AccessToken != "at" {
		t.Fatalf("first poll: %v", err)
	}
	for i := range 2 {
		f.clock.Advance(5 * time.Second)
		if _, out, err := f.svc.Poll(ctx, "tv", a.DeviceCode); !errors.Is(err, oauth.ErrInvalidGrant) || out != deviceflow.OutcomeUsed {
			t.Fatalf("poll %d after delivery: %v (%v), want invalid_grant", i+2, err, out)
		}
	}
	if _, err := f.svc.Lookup(ctx, a.UserCode); !errors.Is(err, deviceflow.ErrCodeUsed) {
		t.Errorf("the user code after delivery: %v, want ErrCodeUsed", err)
	}
	if n := fs.Calls(faulty.OpDelete); n != 0 {
		t.Errorf("%d Deletes after delivery; the record must stay as a tombstone", n)
	}
	// "device" is the hash kind of device codes (codes.go).
	if rec, err := f.store.Get(ctx, f.cfg.Hasher.Hash("device", a.DeviceCode)); err != nil || len(rec.Token) != 0 || rec.CodeVerifier != "" || rec.StateHash != "" || rec.AuthCode != "" {
		t.Errorf("the tombstone: %+v, %v", rec, err)
	}
	f.clock.Advance(10 * time.Minute)
	if _, err := f.svc.Lookup(ctx, a.UserCode); !errors.Is(err, deviceflow.ErrCodeExpired) {
		t.Errorf("the user code after expiry: %v", err)
	}
}

// TestSlowDownNeverOutlivesTheCode: a burst of early polls raises the
// interval by SlowDownStep each time, but never beyond the code's
// remaining lifetime.
func TestSlowDownNeverOutlivesTheCode(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	f.svc.Poll(ctx, "tv", a.DeviceCode) // the first poll sets LastPoll
	life := 10 * time.Minute
	for i := range 500 {
		_, out, err := f.svc.Poll(ctx, "tv", a.DeviceCode)
		if out != deviceflow.OutcomeSlowDown {
			t.Fatalf("early poll %d: %v", i, out)
		}
		p, err2 := f.svc.Lookup(ctx, a.UserCode)
		if err2 != nil {
			t.Fatal(err2)
		}
		left := p.Record.ExpiresAt.Sub(f.clock.Now())
		if time.Duration(p.Record.Interval)*time.Second > left {
			t.Fatalf("after %d early polls the interval is %ds with %s left", i+1, p.Record.Interval, left)
		}
		if want := min(5+5*(i+1), int(life/time.Second)); p.Record.Interval != want {
			t.Fatalf("after %d early polls the interval is %d, want %d", i+1, p.Record.Interval, want)
		}
		if !strings.Contains(err.Error(), "seconds between polls") {
			t.Fatalf("answer %v", err)
		}
	}
	// Near the end the interval shrinks to what is left.
	f.clock.Advance(life - 30*time.Second)
	f.svc.Poll(ctx, "tv", a.DeviceCode)
	p, _ := f.svc.Lookup(ctx, a.UserCode)
	if p.Record.Interval > 30 {
		t.Errorf("with 30s left the interval is %ds", p.Record.Interval)
	}
}

// TestRefreshBinding: a bound refresh token is found only for its client
// and provider; rotation moves the binding; Unbind forgets it.
func TestRefreshBinding(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.BindRefresh(ctx, "rt-1", "tv", "acme", []string{"streaming"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		client, upstream string
		want             error
	}{
		{"tv", "acme", nil},
		{"radio", "acme", deviceflow.ErrRefreshWrongClient},
		{"tv", "other", deviceflow.ErrRefreshWrongClient},
	} {
		if _, err := f.svc.CheckRefresh(ctx, "rt-1", tc.client, tc.upstream); !errors.Is(err, tc.want) {
			t.Errorf("%s at %s: %v, want %v", tc.client, tc.upstream, err, tc.want)
		}
	}
	if _, err := f.svc.CheckRefresh(ctx, "rt-unknown", "tv", "acme"); !errors.Is(err, deviceflow.ErrRefreshUnbound) {
		t.Errorf("unknown token: %v", err)
	}
	// The store never holds the token itself.
	b, _ := f.store.GetBinding(ctx, "rt-1")
	if b != nil {
		t.Error("the binding is keyed by the token in clear")
	}
	g, _ := f.svc.CheckRefresh(ctx, "rt-1", "tv", "acme")
	if err := f.svc.Refreshed(ctx, g, "rt-2", []string{"streaming"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CheckRefresh(ctx, "rt-1", "tv", "acme"); !errors.Is(err, deviceflow.ErrRefreshUnbound) {
		t.Errorf("the rotated-out token: %v", err)
	}
	g, err := f.svc.CheckRefresh(ctx, "rt-2", "tv", "acme")
	if err != nil || len(g.Scopes) != 1 {
		t.Fatalf("the new token: %v", err)
	}
	// Lapses after the lifetime without a refresh; a refresh renews it.
	f.clock.Advance(deviceflow.DefaultRefreshLifetime - time.Hour)
	if err := f.svc.Refreshed(ctx, g, "", []string{"streaming"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	if _, err := f.svc.CheckRefresh(ctx, "rt-2", "tv", "acme"); err != nil {
		t.Errorf("a renewed binding lapsed: %v", err)
	}
	f.clock.Advance(deviceflow.DefaultRefreshLifetime)
	if _, err := f.svc.CheckRefresh(ctx, "rt-2", "tv", "acme"); !errors.Is(err, deviceflow.ErrRefreshUnbound) {
		t.Errorf("a binding unused for its lifetime: %v", err)
	}
	_ = store.ErrNotFound
}

// TestBindingLapsesWithoutRefresh: a binding never refreshed lives the
// default 90 days (what SECURITY.md promises) and not a moment longer.
func TestBindingLapsesWithoutRefresh(t *testing.T) {
	f := newFixture(t) // RefreshLifetime unset: the default
	if err := f.svc.BindRefresh(ctx, "rt-idle", "tv", "acme", nil, ""); err != nil {
		t.Fatal(err)
	}
	const promised = 90 * 24 * time.Hour
	f.clock.Advance(promised - time.Minute)
	if _, err := f.svc.CheckRefresh(ctx, "rt-idle", "tv", "acme"); err != nil {
		t.Fatalf("a binding a minute short of its lifetime: %v", err)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.svc.CheckRefresh(ctx, "rt-idle", "tv", "acme"); !errors.Is(err, deviceflow.ErrRefreshUnbound) {
		t.Errorf("a binding never refreshed, a minute past its lifetime: %v, want ErrRefreshUnbound", err)
	}
}

// TestDecisionToken: a confirmation page's token is bound to the browser
// token and the record; any other pairing is refused.
func TestDecisionToken(t *testing.T) {
	f := newFixture(t)
	tok := f.svc.DecisionToken("browser-a", "record-1")
	for _, tc := range []struct {
		browser, record, token string
		want                   bool
	}{
		{"browser-a", "record-1", tok, true},
		{"browser-a", "record-2", tok, false},
		{"browser-b", "record-1", tok, false},
		{"browser-a", "record-1", "", false},
		{"browser-a", "record-1", "browser-a", false},
	} {
		if got := f.svc.CheckDecisionToken(tc.browser, tc.record, tc.token); got != tc.want {
			t.Errorf("CheckDecisionToken(%s, %s) = %v", tc.browser, tc.record, got)
		}
	}
}
