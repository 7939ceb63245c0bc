package deviceflow_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/oauth"
	"github.com/devicegate/devicegate/api/internal/seal"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

type fixture struct {
	svc    *deviceflow.Service
	clock  *storetest.Clock
	store  store.Store
	sealer *seal.Sealer
	cfg    deviceflow.Config
}

// rebuild puts the service on st (typically a wrapper of f.store).
func (f *fixture) rebuild(t *testing.T, st store.Store) {
	t.Helper()
	f.cfg.Store = st
	svc, err := deviceflow.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc, f.store = svc, st
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := storetest.NewClock()
	st := memory.New(clock.Now)
	h, err := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sl, err := seal.New(rand.Reader, bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	cfg := deviceflow.Config{
		Store: st, Hasher: h, Sealer: sl, Now: clock.Now, Rand: rand.Reader,
		Lifetime: 10 * time.Minute, Interval: 5 * time.Second,
	}
	svc, err := deviceflow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, clock: clock, store: st, sealer: sl, cfg: cfg}
}

var ctx = context.Background()

// begin, deny and fail look a typed code up, as the confirmation page
// does, then act on the record found.
func (f *fixture) begin(userCode string) (*deviceflow.Begin, error) {
	p, err := f.svc.Lookup(ctx, userCode)
	if err != nil {
		return nil, err
	}
	return f.svc.BeginAuthorization(ctx, p)
}

func (f *fixture) deny(userCode string) error {
	p, err := f.svc.Lookup(ctx, userCode)
	if err != nil {
		return err
	}
	return f.svc.Deny(ctx, p)
}

func (f *fixture) fail(userCode string) (bool, error) {
	p, err := f.svc.Lookup(ctx, userCode)
	if err != nil {
		return false, err
	}
	return f.svc.RecordFailure(ctx, p)
}

func (f *fixture) approve(t *testing.T, a *deviceflow.Authorization) {
	t.Helper()
	b, err := f.begin(a.UserCode)
	if err != nil {
		t.Fatalf("BeginAuthorization: %v", err)
	}
	c, err := f.svc.ClaimCallback(ctx, b.RecordID, b.State)
	if err != nil {
		t.Fatalf("ClaimCallback: %v", err)
	}
	if err := f.svc.Complete(ctx, c, &deviceflow.Tokens{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", Scope: "s", Expiry: f.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	h, _ := deviceflow.NewHasher(make([]byte, 32))
	sl, _ := seal.New(rand.Reader, make([]byte, 32))
	good := deviceflow.Config{Store: memory.New(nil), Hasher: h, Sealer: sl, Now: time.Now, Rand: rand.Reader, Lifetime: time.Minute, Interval: time.Second}
	if _, err := deviceflow.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := []func(*deviceflow.Config){
		func(c *deviceflow.Config) { c.Store = nil },
		func(c *deviceflow.Config) { c.Hasher = nil },
		func(c *deviceflow.Config) { c.Sealer = nil },
		func(c *deviceflow.Config) { c.Now = nil },
		func(c *deviceflow.Config) { c.Rand = nil },
		func(c *deviceflow.Config) { c.Lifetime = 0 },
		func(c *deviceflow.Config) { c.Interval = 1500 * time.Millisecond },
	}
	for i, f := range bad {
		c := good
		f(&c)
		if _, err := deviceflow.New(c); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}

func TestFullFlowDeliversOnce(t *testing.T) {
	f := newFixture(t)
	a, err := f.svc.Authorize(ctx, "tv", []string{"streaming"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ExpiresIn != 10*time.Minute || a.Interval != 5*time.Second {
		t.Errorf("authorization %+v", a)
	}
	if _, o, err := f.svc.Poll(ctx, "tv", a.DeviceCode); o != deviceflow.OutcomePending || !errors.Is(err, oauth.ErrAuthorizationPending) {
		t.Fatalf("first poll: %v %v", o, err)
	}
	p, err := f.svc.Lookup(ctx, deviceflow.FormatUserCode(a.UserCode))
	if err != nil || p.Record.ClientID != "tv" || p.Record.Scopes[0] != "streaming" {
		t.Fatalf("Lookup: %+v %v", p, err)
	}
	f.approve(t, a)
	f.clock.Advance(time.Second)
	tok, o, err := f.svc.Poll(ctx, "tv", a.DeviceCode)
	if err != nil || o != deviceflow.OutcomeTokens {
		t.Fatalf("poll after approval: %v %v", o, err)
	}
	if tok.AccessToken != "at" || tok.RefreshToken != "rt" || tok.ExpiresIn != 3599 || tok.TokenType != "Bearer" {
		t.Errorf("tokens %+v", tok)
	}
	if _, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode); !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("second poll after delivery: %v, want invalid_grant", err)
	}
	// The code stays "used" for its lifetime, not "unknown".
	if _, err := f.svc.Lookup(ctx, a.UserCode); !errors.Is(err, deviceflow.ErrCodeUsed) {
		t.Errorf("user code after delivery: %v", err)
	}
}

func TestConcurrentPollsDeliverExactlyOnce(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	f.approve(t, a)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	for range 50 {
		wg.Go(func() {
			_, o, err := f.svc.Poll(ctx, "tv", a.DeviceCode)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case o == deviceflow.OutcomeTokens && err == nil:
				got["tokens"]++
			case errors.Is(err, oauth.ErrInvalidGrant), errors.Is(err, oauth.ErrExpiredToken):
				got["refused"]++
			default:
				t.Errorf("unexpected poll answer %v %v", o, err)
			}
		})
	}
	wg.Wait()
	if got["tokens"] != 1 || got["refused"] != 49 {
		t.Errorf("answers %v, want exactly one delivery", got)
	}
}

func TestSlowDownRaisesIntervalAndIsRemembered(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	f.svc.Poll(ctx, "tv", a.DeviceCode)
	f.clock.Advance(time.Second)
	if _, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode); !errors.Is(err, oauth.ErrSlowDown) {
		t.Fatalf("early poll: %v", err)
	}
	f.clock.Advance(6 * time.Second) // 7 s since the last accepted poll, interval now 10
	if _, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode); !errors.Is(err, oauth.ErrSlowDown) {
		t.Fatalf("poll at the old interval: %v, want slow_down (interval is now 10 s)", err)
	}
	f.clock.Advance(15 * time.Second)
	if _, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode); !errors.Is(err, oauth.ErrAuthorizationPending) {
		t.Fatalf("poll after waiting: %v", err)
	}
}

func TestPollErrors(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	if _, _, err := f.svc.Poll(ctx, "other", a.DeviceCode); !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("poll by another client: %v", err)
	}
	if _, _, err := f.svc.Poll(ctx, "tv", "not-a-code"); !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("unknown code: %v", err)
	}
	f.clock.Advance(10 * time.Minute)
	if _, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode); !errors.Is(err, oauth.ErrExpiredToken) {
		t.Errorf("expired: %v", err)
	}
	if _, err := f.svc.Lookup(ctx, a.UserCode); !errors.Is(err, deviceflow.ErrCodeExpired) {
		t.Errorf("lookup expired: %v", err)
	}
	if _, err := f.begin(a.UserCode); !errors.Is(err, deviceflow.ErrCodeExpired) {
		t.Errorf("begin expired: %v", err)
	}
}

func TestDeny(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	if err := f.deny(a.UserCode); err != nil {
		t.Fatal(err)
	}
	_, o, err := f.svc.Poll(ctx, "tv", a.DeviceCode)
	var oe oauth.Error
	if o != deviceflow.OutcomeDenied || !errors.As(err, &oe) || oe.Code != "access_denied" || oe.Description == "" {
		t.Errorf("poll after deny: %v %v", o, err)
	}
	if _, err := f.svc.Lookup(ctx, a.UserCode); !errors.Is(err, deviceflow.ErrCodeDenied) {
		t.Errorf("lookup after deny: %v", err)
	}
	if err := f.deny(a.UserCode); !errors.Is(err, deviceflow.ErrCodeDenied) {
		t.Errorf("deny twice: %v", err)
	}
	if _, err := f.begin(a.UserCode); !errors.Is(err, deviceflow.ErrCodeDenied) {
		t.Errorf("allow after deny: %v", err)
	}
}

func TestCallbackStateChecks(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	b, _ := f.begin(a.UserCode)
	if _, err := f.svc.ClaimCallback(ctx, b.RecordID, "forged"); !errors.Is(err, deviceflow.ErrStateMismatch) {
		t.Errorf("forged state: %v", err)
	}
	c, err := f.svc.ClaimCallback(ctx, b.RecordID, b.State)
	if err != nil {
		t.Fatal(err)
	}
	if c.Verifier != b.Verifier {
		t.Error("claim did not return the verifier")
	}
	if _, err := f.svc.ClaimCallback(ctx, b.RecordID, b.State); !errors.Is(err, deviceflow.ErrCallbackUsed) {
		t.Errorf("replayed callback: %v", err)
	}
	if err := f.svc.Fail(ctx, c, "upstream failed"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode); !errors.Is(err, oauth.ErrAccessDenied) || err.Error() != "access_denied: upstream failed" {
		t.Errorf("poll after failure: %v", err)
	}
	if _, err := f.svc.ClaimCallback(ctx, b.RecordID, b.State); !errors.Is(err, deviceflow.ErrCodeDenied) {
		t.Errorf("callback after failure: %v", err)
	}
	if _, err := f.svc.ClaimCallback(ctx, "nope", b.State); !errors.Is(err, deviceflow.ErrUnknownCode) {
		t.Errorf("callback for unknown record: %v", err)
	}
}

func TestAllowAgainSupersedesAnExchangeInFlight(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	b1, _ := f.begin(a.UserCode)
	c1, err := f.svc.ClaimCallback(ctx, b1.RecordID, b1.State)
	if err != nil {
		t.Fatal(err)
	}
	// The person starts over before the first exchange finished.
	b2, err := f.begin(a.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Complete(ctx, c1, &deviceflow.Tokens{AccessToken: "old"}); !errors.Is(err, deviceflow.ErrStateMismatch) {
		t.Errorf("stale completion: %v, want ErrStateMismatch", err)
	}
	if _, err := f.svc.ClaimCallback(ctx, b1.RecordID, b1.State); !errors.Is(err, deviceflow.ErrStateMismatch) {
		t.Errorf("old state after restart: %v", err)
	}
	c2, err := f.svc.ClaimCallback(ctx, b2.RecordID, b2.State)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Complete(ctx, c2, &deviceflow.Tokens{AccessToken: "new"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.svc.Poll(ctx, "tv", a.DeviceCode)
	if err != nil || tok.AccessToken != "new" {
		t.Errorf("poll: %+v %v", tok, err)
	}
}

func TestLookupInvalidAndUnknown(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Lookup(ctx, "nope"); !errors.Is(err, deviceflow.ErrInvalidUserCode) {
		t.Errorf("invalid: %v", err)
	}
	if _, err := f.svc.Lookup(ctx, "BCDF-GHJK"); !errors.Is(err, deviceflow.ErrUnknownCode) {
		t.Errorf("unknown: %v", err)
	}
}

// collidingReader hands out the same bytes every time, so every user code
// drawn collides with the first one.
type collidingReader struct{}

func (collidingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

func TestAuthorizeGivesUpOnEndlessCollisions(t *testing.T) {
	f := newFixture(t)
	h, _ := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	sl, _ := seal.New(rand.Reader, make([]byte, 32))
	svc, _ := deviceflow.New(deviceflow.Config{Store: f.store, Hasher: h, Sealer: sl, Now: f.clock.Now, Rand: collidingReader{}, Lifetime: time.Minute, Interval: time.Second})
	if _, err := svc.Authorize(ctx, "tv", nil); err != nil {
		t.Fatalf("first: %v", err)
	}
	if _, err := svc.Authorize(ctx, "tv", nil); !errors.Is(err, deviceflow.ErrCodeSpace) {
		t.Errorf("second: %v, want ErrCodeSpace", err)
	}
}

// TestSecretsAreSealedAtRest: what the store holds reveals neither the
// tokens nor the PKCE verifier nor the codes.
func TestSecretsAreSealedAtRest(t *testing.T) {
	f := newFixture(t)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	b, err := f.begin(a.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := f.store.Get(ctx, b.RecordID)
	if got := f.opened(t, rec.CodeVerifier, rec.ID, b.Verifier); got != b.Verifier {
		t.Errorf("the sealed verifier opens to %d other bytes", len(got))
	}
	c, _ := f.svc.ClaimCallback(ctx, b.RecordID, b.State)
	if c.Verifier != b.Verifier {
		t.Fatal("claim did not recover the verifier")
	}
	if err := f.svc.Complete(ctx, c, &deviceflow.Tokens{AccessToken: "very-secret-access", RefreshToken: "very-secret-refresh"}); err != nil {
		t.Fatal(err)
	}
	rec, _ = f.store.Get(ctx, b.RecordID)
	for _, leak := range []string{"very-secret", a.DeviceCode, a.UserCode, b.State} {
		if bytes.Contains(rec.Token, []byte(leak)) || strings.Contains(rec.ID, leak) || strings.Contains(rec.UserCodeHash, leak) || strings.Contains(rec.StateHash, leak) {
			t.Errorf("the stored record reveals %q", leak)
		}
	}
	// A sealed token moved to another record does not open.
	a2, _ := f.svc.Authorize(ctx, "tv", nil)
	b2, _ := f.begin(a2.UserCode)
	c2, _ := f.svc.ClaimCallback(ctx, b2.RecordID, b2.State)
	f.svc.Complete(ctx, c2, &deviceflow.Tokens{AccessToken: "other"})
	f.store.Update(ctx, b2.RecordID, func(r *store.Record) error { r.Token = rec.Token; return nil })
	if _, _, err := f.svc.Poll(ctx, "tv", a2.DeviceCode); err == nil || errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("a transplanted token was accepted or misreported: %v", err)
	}
}

// TestKeyRotationKeepsFlowsInProgress: a flow started under the old key
// finishes after the key changed, when the old key is kept as previous.
func TestKeyRotationKeepsFlowsInProgress(t *testing.T) {
	f := newFixture(t) // runs on key 7 (hash) / 8 (seal)
	a, _ := f.svc.Authorize(ctx, "tv", nil)
	b, err := f.begin(a.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	oldHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	newHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{9}, 32))
	sealer, _ := seal.New(rand.Reader, bytes.Repeat([]byte{10}, 32), bytes.Repeat([]byte{8}, 32))
	rotated, err := deviceflow.New(deviceflow.Config{Store: f.store, Hasher: newHasher, Previous: []*deviceflow.Hasher{oldHasher}, Sealer: sealer,
		Now: f.clock.Now, Rand: rand.Reader, Lifetime: 10 * time.Minute, Interval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Lookup(ctx, a.UserCode); err != nil {
		t.Fatalf("lookup after rotation: %v", err)
	}
	c, err := rotated.ClaimCallback(ctx, b.RecordID, b.State)
	if err != nil || c.Verifier != b.Verifier {
		t.Fatalf("claim after rotation: %v", err)
	}
	if err := rotated.Complete(ctx, c, &deviceflow.Tokens{AccessToken: "x"}); err != nil {
		t.Fatal(err)
	}
	if tok, _, err := rotated.Poll(ctx, "tv", a.DeviceCode); err != nil || tok.AccessToken != "x" {
		t.Fatalf("poll after rotation: %v", err)
	}

	// Without the previous key the old flow is simply unknown.
	a2, _ := f.svc.Authorize(ctx, "tv", nil)
	bare, _ := deviceflow.New(deviceflow.Config{Store: f.store, Hasher: newHasher, Sealer: sealer, Now: f.clock.Now, Rand: rand.Reader, Lifetime: time.Minute, Interval: time.Second})
	if _, _, err := bare.Poll(ctx, "tv", a2.DeviceCode); !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("poll without the previous key: %v", err)
	}
}

// TestRotationMovesBindingsToTheCurrentKey: with a provider that does not
// rotate refresh tokens, a binding made under the old key is found during
// the overlap and moved to the current key by the device's refresh, so the
// device keeps refreshing once the previous key is removed. A device that
// did not refresh during the overlap is signed out then: the reason the
// previous key must stay for the refresh lifetime.
func TestRotationMovesBindingsToTheCurrentKey(t *testing.T) {
	f := newFixture(t) // key 7
	for _, tok := range []string{"rt-refreshed", "rt-same", "rt-idle"} {
		if err := f.svc.BindRefresh(ctx, tok, "tv", "acme", []string{"streaming"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	oldHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	newHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{9}, 32))
	cfg := f.cfg
	cfg.Hasher, cfg.Previous = newHasher, []*deviceflow.Hasher{oldHasher}
	overlap, err := deviceflow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The provider answers without a refresh token, or with the same one.
	for tok, answered := range map[string]string{"rt-refreshed": "", "rt-same": "rt-same"} {
		g, err := overlap.CheckRefresh(ctx, tok, "tv", "acme")
		if err != nil {
			t.Fatalf("%s during the overlap: %v", tok, err)
		}
		if err := overlap.Refreshed(ctx, g, answered, []string{"streaming"}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Previous = nil
	after, err := deviceflow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"rt-refreshed", "rt-same"} {
		if _, err := after.CheckRefresh(ctx, tok, "tv", "acme"); err != nil {
			t.Errorf("%s after the previous key was removed: %v", tok, err)
		}
	}
	if _, err := after.CheckRefresh(ctx, "rt-idle", "tv", "acme"); !errors.Is(err, deviceflow.ErrRefreshUnbound) {
		t.Errorf("a binding nobody refreshed during the overlap: %v, want unbound", err)
	}
	// The move left nothing under the old key.
	if _, err := f.svc.CheckRefresh(ctx, "rt-refreshed", "tv", "acme"); !errors.Is(err, deviceflow.ErrRefreshUnbound) {
		t.Errorf("the old-key binding is still there: %v", err)
	}
}

// TestDevicesTellWhichKey: the operator's list says which bindings still
// depend on the previous key (removing it signs those out), which moved to
// the current key at a refresh, and which predate the key being recorded,
// so a rotation can end as soon as none depends on the previous key.
func TestDevicesTellWhichKey(t *testing.T) {
	f := newFixture(t) // key 7
	for _, tok := range []string{"rt-moves", "rt-stays"} {
		if err := f.svc.BindRefresh(ctx, tok, "tv", "acme", []string{"streaming"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	// A binding written before bindings recorded their key.
	if err := f.store.PutBinding(ctx, &store.Binding{ID: "written-by-an-older-release", ClientID: "tv", Upstream: "acme",
		ExpiresAt: f.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	oldHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{7}, 32))
	newHasher, _ := deviceflow.NewHasher(bytes.Repeat([]byte{9}, 32))
	if oldHasher.Fingerprint() == newHasher.Fingerprint() {
		t.Fatal("two keys share a fingerprint")
	}
	cfg := f.cfg
	cfg.Hasher, cfg.Previous = newHasher, []*deviceflow.Hasher{oldHasher}
	overlap, err := deviceflow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	census := func() map[deviceflow.KeyState]int {
		t.Helper()
		ds, err := overlap.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[deviceflow.KeyState]int{}
		for _, d := range ds {
			out[d.Key]++
		}
		return out
	}
	if got, want := census(), map[deviceflow.KeyState]int{deviceflow.KeyPrevious: 2, deviceflow.KeyUnknown: 1}; !maps.Equal(got, want) {
		t.Errorf("before any refresh: %v, want %v", got, want)
	}
	g, err := overlap.CheckRefresh(ctx, "rt-moves", "tv", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := overlap.Refreshed(ctx, g, "", []string{"streaming"}); err != nil {
		t.Fatal(err)
	}
	want := map[deviceflow.KeyState]int{deviceflow.KeyCurrent: 1, deviceflow.KeyPrevious: 1, deviceflow.KeyUnknown: 1}
	if got := census(); !maps.Equal(got, want) {
		t.Errorf("after one device refreshed: %v, want %v", got, want)
	}
}
