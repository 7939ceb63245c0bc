// Package storetest is the conformance suite every store.Store backend runs:
// a backend's test is one call to Run. It checks the contract the protocol
// relies on — unique keys, expiry whatever the cleanup does, and an Update
// that is a real compare-and-swap under concurrency.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// T0 is the fixed start time of every test's clock.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is a settable clock for backends under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at T0.
func NewClock() *Clock { return &Clock{t: T0} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// NewStore opens a fresh, empty backend that reads the time from now.
type NewStore func(t *testing.T, now store.Clock) store.Store

// Run runs the whole suite against the backend newStore opens.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, c *Clock)
	}{
		{"CreateThenReadByBothKeys", testCreateRead},
		{"CreateRejectsTakenKeys", testCreateConflict},
		{"MissingIsNotFound", testMissing},
		{"ExpiredReadsAsExpired", testExpired},
		{"UpdateWritesAndVersions", testUpdate},
		{"UpdateAbortsOnError", testUpdateAbort},
		{"UpdateKnownWritesOverWhatWasRead", testUpdateKnown},
		{"UpdateKnownOfAStaleReadRereads", testUpdateKnownStale},
		{"UpdateKeepsKeys", testUpdateKeepsKeys},
		{"DeleteFreesBothKeys", testDelete},
		{"ConcurrentUpdatesAllApply", testConcurrentUpdates},
		{"UpdateEndsWithItsContext", testUpdateEndsWithItsContext},
		{"ExactlyOneTakesTheToken", testExactlyOnce},
		{"UpdateIsAtomicAgainstInterleavedWrite", testInterleavedWrite},
		{"BindingPutGetDelete", testBindingRoundTrip},
		{"BindingExpires", testBindingExpiry},
		{"BindingMoves", testBindingMove},
		{"BindingsEnumerate", testBindingEach},
		{"BindingWithoutTimesReads", testBindingLegacy},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock()
			s := newStore(t, c.Now)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s, c)
		})
	}
}

var seq atomic.Uint64

// newRecord returns a pending record with unique keys, living ten minutes.
func newRecord(c *Clock) *store.Record {
	n := seq.Add(1)
	now := c.Now()
	return &store.Record{
		ID:           fmt.Sprintf("dev-%d-%d", time.Now().UnixNano(), n),
		UserCodeHash: fmt.Sprintf("usr-%d-%d", time.Now().UnixNano(), n),
		ClientID:     "tv",
		Scopes:       []string{"user-read-playback-state", "streaming"},
		Status:       store.StatusPending,
		CreatedAt:    now,
		ExpiresAt:    now.Add(10 * time.Minute),
		Interval:     5,
	}
}

func mustCreate(t *testing.T, s store.Store, r *store.Record) {
	t.Helper()
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

// same compares records ignoring Version, with times compared as instants.
func same(t *testing.T, got, want *store.Record) {
	t.Helper()
	g, w := got.Clone(), want.Clone()
	g.Version, w.Version = "", ""
	for _, p := range []*store.Record{g, w} {
		p.CreatedAt = p.CreatedAt.UTC()
		p.ExpiresAt = p.ExpiresAt.UTC()
		p.LastPoll = p.LastPoll.UTC()
		p.ExchangeUntil = p.ExchangeUntil.UTC()
		if len(p.Scopes) == 0 {
			p.Scopes = nil
		}
		if len(p.Token) == 0 {
			p.Token = nil
		}
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("record differs:\n got %+v\nwant %+v", g, w)
	}
}

func testCreateRead(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	r.LastPoll = c.Now().Add(time.Second)
	r.Token = []byte(`{"access_token":"x"}`)
	r.Reason = "why"
	r.StateHash, r.CodeVerifier = "sh", "cv"
	r.AuthCode, r.ExchangeUntil = "sealed-code", c.Now().Add(30*time.Second)
	r.Failures, r.Locked = 3, true
	mustCreate(t, s, r)

	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	same(t, got, r)
	if got.Version == "" {
		t.Error("Get returned no Version")
	}
	got2, err := s.GetByUserCode(ctx, r.UserCodeHash)
	if err != nil {
		t.Fatalf("GetByUserCode: %v", err)
	}
	same(t, got2, r)

	// The caller's copy is not aliased by the backend.
	got.Scopes[0] = "changed"
	again, _ := s.Get(ctx, r.ID)
	if again.Scopes[0] != r.Scopes[0] {
		t.Error("a returned record aliases the stored one")
	}
}

func testCreateConflict(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)

	sameID := newRecord(c)
	sameID.ID = r.ID
	if err := s.Create(ctx, sameID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Create with a taken ID: got %v, want ErrConflict", err)
	}
	sameUser := newRecord(c)
	sameUser.UserCodeHash = r.UserCodeHash
	if err := s.Create(ctx, sameUser); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Create with a taken user code: got %v, want ErrConflict", err)
	}
	// The failed creates left nothing behind.
	if _, err := s.Get(ctx, sameUser.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a conflicting Create left a record: %v", err)
	}
	got, err := s.GetByUserCode(ctx, r.UserCodeHash)
	if err != nil || got.ID != r.ID {
		t.Errorf("user code now points to %v, %v; want %s", got, err, r.ID)
	}
}

func testMissing(t *testing.T, s store.Store, _ *Clock) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
		t.Errorf("Get missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.GetByUserCode(ctx, "nope"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
		t.Errorf("GetByUserCode missing: got %v, want ErrNotFound", err)
	}
	called := false
	if _, err := s.Update(ctx, "nope", func(*store.Record) error { called = true; return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update missing: got %v, want ErrNotFound", err)
	}
	if called {
		t.Error("Update called fn for a missing record")
	}
	if err := s.Delete(ctx, "nope"); err != nil {
		t.Errorf("Delete missing: %v", err)
	}
}

func testExpired(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	c.Advance(10*time.Minute - time.Millisecond)
	known, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatalf("Get just before expiry: %v", err)
	}
	c.Advance(time.Millisecond)
	checks := map[string]func() error{
		"Get":           func() error { _, err := s.Get(ctx, r.ID); return err },
		"GetByUserCode": func() error { _, err := s.GetByUserCode(ctx, r.UserCodeHash); return err },
		"Update": func() error {
			_, err := s.Update(ctx, r.ID, func(*store.Record) error { t.Error("Update called fn for an expired record"); return nil })
			return err
		},
		"UpdateKnown": func() error {
			_, err := store.UpdateKnown(ctx, s, known, func(*store.Record) error { t.Error("UpdateKnown called fn for an expired record"); return nil })
			return err
		},
	}
	for name, fn := range checks {
		err := fn()
		if !errors.Is(err, store.ErrExpired) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s at expiry: got %v, want ErrExpired (which is ErrNotFound)", name, err)
		}
	}
	// Past retention the backend may have swept it; either answer is fine,
	// but it must still not be readable.
	c.Advance(store.Retention + time.Minute)
	if _, err := s.Get(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get past retention: got %v, want ErrNotFound", err)
	}
}

func testUpdate(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	before, _ := s.Get(ctx, r.ID)

	out, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		rec.Status = store.StatusApproved
		rec.Token = []byte("tok")
		rec.Interval = 10
		rec.LastPoll = c.Now()
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if out.Status != store.StatusApproved || string(out.Token) != "tok" {
		t.Errorf("Update returned %+v", out)
	}
	got, _ := s.Get(ctx, r.ID)
	if got.Status != store.StatusApproved || string(got.Token) != "tok" || got.Interval != 10 || !got.LastPoll.Equal(c.Now()) {
		t.Errorf("after Update read %+v", got)
	}
	if got.Version == before.Version {
		t.Errorf("Version did not change on Update: %q", got.Version)
	}
	if out.Version != got.Version {
		t.Errorf("Update returned Version %q, a read gives %q", out.Version, got.Version)
	}
}

// testUpdateKnown: store.UpdateKnown over a record just read writes like
// Update.
func testUpdateKnown(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	known, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := store.UpdateKnown(ctx, s, known, func(rec *store.Record) error {
		rec.Status = store.StatusAuthorizing
		rec.StateHash = "st"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateKnown: %v", err)
	}
	got, _ := s.Get(ctx, r.ID)
	if got.Status != store.StatusAuthorizing || got.StateHash != "st" || out.StateHash != "st" {
		t.Errorf("after UpdateKnown read %+v", got)
	}
	if got.Version == known.Version || out.Version != got.Version {
		t.Errorf("Versions: known %q, returned %q, read %q", known.Version, out.Version, got.Version)
	}
	// What it returned is known in turn: a second step of a flow.
	if _, err := store.UpdateKnown(ctx, s, out, func(rec *store.Record) error { rec.Status = store.StatusApproved; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, r.ID); got.Status != store.StatusApproved || got.StateHash != "st" {
		t.Errorf("after the second UpdateKnown read %+v", got)
	}
}

// testUpdateKnownStale: a record written since the caller read it is not
// overwritten with what the caller's function made of the old version:
// the function runs again on the stored one, so no write is lost (on
// Cosmos DB the replace carries If-Match; without it this loses the first
// count).
func testUpdateKnownStale(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	known, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error { rec.Failures++; return nil }); err != nil {
		t.Fatal(err)
	}
	out, err := store.UpdateKnown(ctx, s, known, func(rec *store.Record) error { rec.Failures++; return nil })
	if err != nil {
		t.Fatalf("UpdateKnown: %v", err)
	}
	if got, _ := s.Get(ctx, r.ID); got.Failures != 2 || out.Failures != 2 {
		t.Errorf("two counted failures read as %d (returned %d): a write was lost", got.Failures, out.Failures)
	}
}

func testUpdateAbort(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	boom := errors.New("boom")
	_, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		rec.Status = store.StatusDenied
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: got %v, want fn's error", err)
	}
	got, _ := s.Get(ctx, r.ID)
	if got.Status != store.StatusPending {
		t.Errorf("an aborted Update wrote status %q", got.Status)
	}
}

func testUpdateKeepsKeys(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		rec.ID, rec.UserCodeHash = "other", "other"
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := s.Get(ctx, r.ID); err != nil {
		t.Errorf("record moved away from its ID: %v", err)
	}
	if _, err := s.GetByUserCode(ctx, r.UserCodeHash); err != nil {
		t.Errorf("record moved away from its user code: %v", err)
	}
}

func testDelete(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	if err := s.Delete(ctx, r.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if _, err := s.GetByUserCode(ctx, r.UserCodeHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetByUserCode after Delete: %v", err)
	}
	// Both keys are free again.
	mustCreate(t, s, r)
}

// testConcurrentUpdates checks the contract on store.Store.Update:
// contention is not failure. Every one of n concurrent increments must
// apply while the context lasts, however many rounds a backend's
// compare-and-swap loses; the deadline is generous because the contract
// bounds Update by its context, not by a count of rounds.
func testConcurrentUpdates(t *testing.T, s store.Store, c *Clock) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRecord(c)
	r.Interval = 0
	mustCreate(t, s, r)
	const n = 25
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
				rec.Interval++
				return nil
			}); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Interval != n {
		t.Errorf("after %d concurrent increments Interval = %d (lost updates)", n, got.Interval)
	}
}

// testUpdateEndsWithItsContext: an Update whose context has ended answers
// with the context's error and writes nothing.
func testUpdateEndsWithItsContext(t *testing.T, s store.Store, c *Clock) {
	r := newRecord(c)
	mustCreate(t, s, r)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Update(ctx, r.ID, func(rec *store.Record) error { rec.Interval = 99; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with an ended context: %v, want an error matching context.Canceled", err)
	}
	got, err := s.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Interval != r.Interval {
		t.Errorf("an Update whose context had ended wrote Interval = %d", got.Interval)
	}
}

var errTaken = errors.New("already taken")

func testExactlyOnce(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	r.Status = store.StatusApproved
	r.Token = []byte("the-token")
	mustCreate(t, s, r)
	const n = 50
	var wg sync.WaitGroup
	var winners atomic.Int32
	for range n {
		wg.Go(func() {
			var took []byte
			_, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
				if rec.Status != store.StatusApproved {
					return errTaken
				}
				took = rec.Token
				rec.Status = store.StatusDelivered
				rec.Token = nil
				return nil
			})
			switch {
			case err == nil:
				if string(took) != "the-token" {
					t.Errorf("winner took %q", took)
				}
				winners.Add(1)
			case errors.Is(err, errTaken):
			default:
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if w := winners.Load(); w != 1 {
		t.Errorf("%d of %d concurrent takers got the token, want exactly 1", w, n)
	}
}

func testPing(t *testing.T, s store.Store, _ *Clock) {
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// testInterleavedWrite makes another writer change the record while fn of
// an Update is running — between its read and its write — and checks that
// neither change is lost. A backend that holds a lock across fn makes the
// other writer wait (it is given up to interleaveWait to get in); one that
// compares and swaps sees the conflict and runs fn again. A backend that
// reads, unlocks and writes loses the other writer's change, every time.
func testInterleavedWrite(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	r := newRecord(c)
	mustCreate(t, s, r)
	var (
		once  sync.Once
		wg    sync.WaitGroup
		calls atomic.Int32
	)
	_, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		calls.Add(1)
		once.Do(func() {
			done := make(chan struct{})
			wg.Go(func() {
				defer close(done)
				if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
					rec.Failures += 10
					return nil
				}); err != nil {
					t.Errorf("interleaved Update: %v", err)
				}
			})
			select {
			case <-done:
			case <-time.After(interleaveWait):
			}
		})
		rec.Failures++
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	wg.Wait()
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Failures != 11 {
		t.Errorf("Failures = %d after +1 and an interleaved +10 (fn ran %d times): a write was lost", got.Failures, calls.Load())
	}
}

// interleaveWait is how long testInterleavedWrite lets the other writer try
// to get in while fn runs.
const interleaveWait = 300 * time.Millisecond

func newBinding(c *Clock) *store.Binding {
	return &store.Binding{
		ID:        fmt.Sprintf("rt-%d-%d", time.Now().UnixNano(), seq.Add(1)),
		ClientID:  "tv",
		Upstream:  "https://accounts.example.test/token",
		Scopes:    []string{"streaming", "user-read-email"},
		ExpiresAt: c.Now().Add(90 * 24 * time.Hour),
		CreatedAt: c.Now().Add(-time.Hour),
		// A time with sub-second digits, as a real clock gives.
		RefreshedAt: c.Now().Add(-time.Minute - 123456789*time.Nanosecond),
		Account:     "acct-hash",
	}
}

func sameBinding(t *testing.T, got, want *store.Binding) {
	t.Helper()
	g, w := got.Clone(), want.Clone()
	g.ExpiresAt, w.ExpiresAt = g.ExpiresAt.UTC(), w.ExpiresAt.UTC()
	g.CreatedAt, w.CreatedAt = g.CreatedAt.UTC(), w.CreatedAt.UTC()
	g.RefreshedAt, w.RefreshedAt = g.RefreshedAt.UTC(), w.RefreshedAt.UTC()
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("binding differs:\n got %+v\nwant %+v", g, w)
	}
}

func testBindingRoundTrip(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	b := newBinding(c)
	if _, err := s.GetBinding(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetBinding before Put: %v, want ErrNotFound", err)
	}
	if err := s.PutBinding(ctx, b); err != nil {
		t.Fatalf("PutBinding: %v", err)
	}
	got, err := s.GetBinding(ctx, b.ID)
	if err != nil {
		t.Fatalf("GetBinding: %v", err)
	}
	sameBinding(t, got, b)

	// Put replaces: a refresh renews the binding's life.
	b.ExpiresAt = b.ExpiresAt.Add(time.Hour)
	b.Scopes = []string{"streaming"}
	if err := s.PutBinding(ctx, b); err != nil {
		t.Fatalf("PutBinding again: %v", err)
	}
	got, err = s.GetBinding(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameBinding(t, got, b)

	if err := s.DeleteBinding(ctx, b.ID); err != nil {
		t.Fatalf("DeleteBinding: %v", err)
	}
	if _, err := s.GetBinding(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetBinding after Delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteBinding(ctx, b.ID); err != nil {
		t.Errorf("deleting a missing binding: %v", err)
	}
	// Bindings and records are separate keys: a binding never reads as a
	// record, whatever the ID.
	if _, err := s.Get(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a binding's ID: %v, want ErrNotFound", err)
	}
}

func testBindingExpiry(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	b := newBinding(c)
	b.ExpiresAt = c.Now().Add(time.Hour)
	if err := s.PutBinding(ctx, b); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour - time.Second)
	if _, err := s.GetBinding(ctx, b.ID); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	c.Advance(time.Second)
	if _, err := s.GetBinding(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("at expiry: %v, want ErrNotFound", err)
	}
}

func testBindingMove(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	old := newBinding(c)
	if err := s.PutBinding(ctx, old); err != nil {
		t.Fatal(err)
	}
	next := newBinding(c)
	if err := s.MoveBinding(ctx, old.ID, next); err != nil {
		t.Fatalf("MoveBinding: %v", err)
	}
	if _, err := s.GetBinding(ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old binding after Move: %v, want ErrNotFound", err)
	}
	got, err := s.GetBinding(ctx, next.ID)
	if err != nil {
		t.Fatalf("the new binding after Move: %v", err)
	}
	sameBinding(t, got, next)
}

// testBindingEach: EachBinding yields every live binding, as stored, and
// neither an expired nor a deleted one. The store may hold bindings of
// other tests (a shared server), so only this test's are checked.
func testBindingEach(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	a, b, short := newBinding(c), newBinding(c), newBinding(c)
	short.ExpiresAt = c.Now().Add(time.Minute)
	for _, v := range []*store.Binding{a, b, short} {
		if err := s.PutBinding(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Minute)
	seen := func() map[string]*store.Binding {
		t.Helper()
		out := map[string]*store.Binding{}
		err := s.EachBinding(ctx, func(v *store.Binding) error {
			if out[v.ID] != nil {
				t.Errorf("binding %s yielded twice", v.ID)
			}
			out[v.ID] = v
			return nil
		})
		if err != nil {
			t.Fatalf("EachBinding: %v", err)
		}
		return out
	}
	got := seen()
	for _, want := range []*store.Binding{a, b} {
		if got[want.ID] == nil {
			t.Fatalf("EachBinding did not yield a live binding")
		}
		sameBinding(t, got[want.ID], want)
	}
	if got[short.ID] != nil {
		t.Errorf("EachBinding yielded an expired binding")
	}
	if err := s.DeleteBinding(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	got = seen()
	if got[a.ID] != nil || got[b.ID] == nil {
		t.Errorf("after deleting one: yielded deleted=%v other=%v, want false true", got[a.ID] != nil, got[b.ID] != nil)
	}
	stop := errors.New("stop")
	if err := s.EachBinding(ctx, func(*store.Binding) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("EachBinding with fn failing: %v, want fn's error", err)
	}
}

// testBindingLegacy: a binding written before CreatedAt and RefreshedAt
// existed (zero, so absent from the stored JSON) reads and lists as it
// is, with both zero.
func testBindingLegacy(t *testing.T, s store.Store, c *Clock) {
	ctx := context.Background()
	b := newBinding(c)
	b.CreatedAt, b.RefreshedAt = time.Time{}, time.Time{}
	if err := s.PutBinding(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBinding(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.IsZero() || !got.RefreshedAt.IsZero() {
		t.Errorf("times of a binding without them: %v %v, want zero", got.CreatedAt, got.RefreshedAt)
	}
	found := false
	if err := s.EachBinding(ctx, func(v *store.Binding) error {
		found = found || v.ID == b.ID
		return nil
	}); err != nil || !found {
		t.Errorf("EachBinding over a binding without times: found=%v err=%v", found, err)
	}
}
