package deviceflow_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/store"
)

// approveCode runs the person's side for a passthrough client: the record
// keeps the provider's authorization code instead of tokens.
func (f *fixture) approveCode(t *testing.T, a *deviceflow.Authorization, code string) (verifier, id string) {
	t.Helper()
	b, err := f.begin(a.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.ClaimCallback(ctx, b.RecordID, b.State)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.CompleteWithCode(ctx, c, code); err != nil {
		t.Fatal(err)
	}
	rec, err := f.store.Get(ctx, b.RecordID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != store.StatusApproved || rec.AuthCode == "" || (len(code) > 4 && strings.Contains(rec.AuthCode, code)) || len(rec.Token) != 0 || rec.CodeVerifier != "" {
		t.Fatalf("record after the callback: %+v", rec)
	}
	return b.Verifier, b.RecordID
}

func TestPassthroughExchangesAtPoll(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "kiosk", nil)
	var calls atomic.Int32
	var gotCode, gotVerifier string
	exchange := func(_ context.Context, code, verifier string) (*deviceflow.Tokens, error) {
		calls.Add(1)
		gotCode, gotVerifier = code, verifier
		return &deviceflow.Tokens{AccessToken: "at-pt", RefreshToken: "rt-pt", Expiry: f.clock.Now().Add(time.Hour)}, nil
	}
	if _, o, _ := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, exchange); o != deviceflow.OutcomePending || calls.Load() != 0 {
		t.Fatalf("before approval: %v, %d exchanges", o, calls.Load())
	}
	verifier, _ := f.approveCode(t, a, "the-code")
	f.clock.Advance(5 * time.Second)
	tok, o, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, exchange)
	if err != nil || o != deviceflow.OutcomeTokens || tok.AccessToken != "at-pt" || tok.ExpiresIn != 3600 {
		t.Fatalf("poll: %+v %v %v", tok, o, err)
	}
	if gotCode != "the-code" || gotVerifier != verifier || calls.Load() != 1 {
		t.Errorf("exchanged %q/%q (%d calls)", gotCode, gotVerifier, calls.Load())
	}
	if _, _, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, exchange); !errors.Is(err, oauth.ErrInvalidGrant) || calls.Load() != 1 {
		t.Errorf("second poll: %v (%d calls)", err, calls.Load())
	}
}

// TestPassthroughConcurrentPollsExchangeOnce: while one poll exchanges,
// the others wait (authorization_pending); the code is exchanged once.
func TestPassthroughConcurrentPollsExchangeOnce(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "kiosk", nil)
	f.approveCode(t, a, "c")
	var calls atomic.Int32
	release := make(chan struct{})
	exchange := func(context.Context, string, string) (*deviceflow.Tokens, error) {
		if calls.Add(1) == 1 {
			<-release // only the first exchange blocks, so a bug fails rather than hangs
		}
		return &deviceflow.Tokens{AccessToken: "at"}, nil
	}
	var wg sync.WaitGroup
	var tokens, pending atomic.Int32
	first := make(chan struct{})
	wg.Go(func() {
		close(first)
		if tok, _, _ := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, exchange); tok != nil {
			tokens.Add(1)
		}
	})
	<-first
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Five polls, 25 s on the fake clock: within the 30 s lease.
	for range 5 {
		f.clock.Advance(5 * time.Second)
		_, o, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, exchange)
		if o == deviceflow.OutcomePending && errors.Is(err, oauth.ErrAuthorizationPending) {
			pending.Add(1)
		}
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 || tokens.Load() != 1 || pending.Load() != 5 {
		t.Errorf("%d exchanges, %d deliveries, %d pending", calls.Load(), tokens.Load(), pending.Load())
	}
}

func TestPassthroughFailures(t *testing.T) {
	wrongSecret := &deviceflow.ExchangeFailure{Retry: true, Answer: oauth.Error{Code: "invalid_client", Status: http.StatusUnauthorized, Description: "Acme rejected the client secret"}}
	deadCode := &deviceflow.ExchangeFailure{Answer: oauth.ErrAccessDenied.WithDescription("Acme rejected the authorization code (invalid_grant)")}

	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "kiosk", nil)
	f.approveCode(t, a, "c")
	fail := func(err error) deviceflow.Exchanger {
		return func(context.Context, string, string) (*deviceflow.Tokens, error) { return nil, err }
	}
	// A wrong secret: the device is told, and may try again at once.
	if _, _, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, fail(wrongSecret)); !errors.Is(err, oauth.ErrInvalidClient) {
		t.Fatalf("wrong secret: %v", err)
	}
	// A fault that is not an ExchangeFailure is an error, and keeps the code.
	f.clock.Advance(5 * time.Second)
	if _, _, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, fail(errors.New("boom"))); err == nil || errors.As(err, new(oauth.Error)) {
		t.Fatalf("fault: %v", err)
	}
	// A code the provider no longer takes ends the flow.
	f.clock.Advance(5 * time.Second)
	if _, o, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, fail(deadCode)); o != deviceflow.OutcomeDenied || !errors.Is(err, oauth.ErrAccessDenied) {
		t.Fatalf("dead code: %v %v", o, err)
	}
	f.clock.Advance(5 * time.Second)
	_, o, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, fail(wrongSecret))
	var oe oauth.Error
	if o != deviceflow.OutcomeDenied || !errors.As(err, &oe) || !strings.Contains(oe.Description, "invalid_grant") {
		t.Errorf("after the dead code: %v %v", o, err)
	}

	// A proxy-mode poll on a passthrough record (the client's mode changed
	// mid-flow) is refused without touching the code.
	b, _ := f.svc.Authorize(ctx, "kiosk", nil)
	f.approveCode(t, b, "c2")
	if _, o, err := f.svc.Poll(ctx, "kiosk", b.DeviceCode); o != deviceflow.OutcomeDenied || !errors.Is(err, oauth.ErrAccessDenied) {
		t.Errorf("proxy poll: %v %v", o, err)
	}
}

// TestPassthroughClaimLapses: a poll that died mid-exchange does not keep
// the code forever; after the lease another poll exchanges it.
func TestPassthroughClaimLapses(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "kiosk", nil)
	_, id := f.approveCode(t, a, "c")
	_, _ = f.store.Update(ctx, id, func(r *store.Record) error {
		r.ExchangeUntil = f.clock.Now().Add(deviceflow.DefaultExchangeLease)
		return nil
	})
	ok := func(context.Context, string, string) (*deviceflow.Tokens, error) {
		return &deviceflow.Tokens{AccessToken: "at"}, nil
	}
	f.clock.Advance(10 * time.Second)
	if _, o, _ := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, ok); o != deviceflow.OutcomePending {
		t.Fatalf("during the lease: %v", o)
	}
	f.clock.Advance(deviceflow.DefaultExchangeLease)
	if tok, o, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, ok); o != deviceflow.OutcomeTokens || tok.AccessToken != "at" {
		t.Fatalf("after the lease: %v %v", o, err)
	}
	if rec, err := f.store.Get(ctx, id); err != nil || rec.Status != store.StatusDelivered || rec.AuthCode != "" || len(rec.Token) != 0 {
		t.Errorf("record after delivery: %+v, %v; want a tombstone holding nothing", rec, err)
	}
}

// TestPassthroughDeviceHangsUp: tokens obtained after the device went away
// are kept for its next poll, never lost.
func TestPassthroughDeviceHangsUp(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "kiosk", nil)
	f.approveCode(t, a, "c")
	pctx, cancel := context.WithCancel(ctx)
	exchange := func(ectx context.Context, _, _ string) (*deviceflow.Tokens, error) {
		cancel()
		if ectx.Err() != nil {
			t.Error("the exchange was cancelled with the device's request")
		}
		return &deviceflow.Tokens{AccessToken: "kept"}, nil
	}
	if _, _, err := f.svc.PollExchange(pctx, "kiosk", a.DeviceCode, exchange); !errors.Is(err, context.Canceled) {
		t.Fatalf("hung-up poll: %v", err)
	}
	f.clock.Advance(5 * time.Second)
	never := func(context.Context, string, string) (*deviceflow.Tokens, error) {
		t.Error("the code was exchanged twice")
		return nil, errors.New("no")
	}
	if tok, o, err := f.svc.PollExchange(ctx, "kiosk", a.DeviceCode, never); o != deviceflow.OutcomeTokens || tok.AccessToken != "kept" {
		t.Fatalf("next poll: %+v %v %v", tok, o, err)
	}
}
