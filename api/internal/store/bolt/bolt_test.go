package bolt

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now store.Clock) store.Store {
		return open(t, filepath.Join(t.TempDir(), "devicegate.db"), now)
	})
}

func TestCounterConformance(t *testing.T) {
	storetest.RunCounter(t, func(t *testing.T, now store.Clock) store.Counter {
		return open(t, filepath.Join(t.TempDir(), "devicegate.db"), now)
	})
}

func TestSweepDropsEndedCounters(t *testing.T) {
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)
	ctx := context.Background()
	s.Incr(ctx, "gone", time.Minute)
	s.Incr(ctx, "kept", time.Hour)
	c.Advance(2 * time.Minute)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	var keys []string
	s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(countersBucket).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	})
	if len(keys) != 1 || keys[0] != "1h0m0s|kept" {
		t.Errorf("counters after sweep: %v", keys)
	}
}

// open opens a store with the sweeper off, closed when the test ends.
func open(t *testing.T, path string, now store.Clock) *Store {
	t.Helper()
	s, err := Open(path, Options{Now: now, SweepEvery: -1, Logger: quiet})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func record(c *storetest.Clock, name string, life time.Duration) *store.Record {
	return &store.Record{
		ID:           "dev-" + name,
		UserCodeHash: "usr-" + name,
		ClientID:     "tv",
		Scopes:       []string{"streaming"},
		Status:       store.StatusPending,
		CreatedAt:    c.Now(),
		ExpiresAt:    c.Now().Add(life),
		Interval:     5,
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "devicegate.db")

	s := open(t, path, c.Now)
	r := record(c, "a", 10*time.Minute)
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	before, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		rec.Status = store.StatusApproved
		rec.Token = []byte("tok")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Pacing lives in memory only: the restart forgets it.
	paced, err := s.Update(ctx, r.ID, poll(c))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path, c.Now)
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if got.Status != store.StatusApproved || string(got.Token) != "tok" || got.Version != before.Version || !got.LastPoll.IsZero() {
		t.Errorf("after reopen got %+v, want approved with token, Version %s and no last poll", got, before.Version)
	}
	if _, err := s.GetByUserCode(ctx, r.UserCodeHash); err != nil {
		t.Errorf("GetByUserCode after reopen: %v", err)
	}
	// Versions keep moving after a restart, durable and paced alike; a
	// repeated one would let a stale compare-and-swap through.
	for _, fn := range []func(*store.Record) error{poll(c), func(r *store.Record) error { r.Failures++; return nil }} {
		after, err := s.Update(ctx, r.ID, fn)
		if err != nil {
			t.Fatal(err)
		}
		if after.Version == before.Version || after.Version == paced.Version {
			t.Errorf("Version %s reused after reopen", after.Version)
		}
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)

	// Each record's lifetime is chosen so that, once the clock moves on by
	// an hour, it sits where its name says.
	const later = time.Hour
	tests := []struct {
		name    string
		life    time.Duration
		wantErr error // from Get after the sweep; nil means still live
		swept   bool
	}{
		{"live", later + time.Minute, nil, false},
		{"expired-within-retention", later - time.Minute, store.ErrExpired, false},
		{"past-retention", later - store.Retention - time.Minute, store.ErrNotFound, true},
		{"long-past-retention", time.Minute, store.ErrNotFound, true},
	}
	for _, tc := range tests {
		if err := s.Create(ctx, record(c, tc.name, tc.life)); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(later)

	n, err := s.Sweep(ctx)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != 2 {
		t.Errorf("Sweep removed %d records, want 2", n)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := record(c, tc.name, tc.life)
			_, err := s.Get(ctx, r.ID)
			if !errors.Is(err, tc.wantErr) || (tc.swept && errors.Is(err, store.ErrExpired)) {
				t.Errorf("Get: got %v, want %v", err, tc.wantErr)
			}
			// Create ignores dangling index entries, so look at the
			// bucket itself: a swept record leaves no entry behind.
			if got := indexed(t, s, r.UserCodeHash); got == tc.swept {
				t.Errorf("user-code index entry present = %v after the sweep", got)
			}
			// A swept record's user code is free again; any other is
			// still taken.
			clash := record(c, tc.name+"-new", 10*time.Minute)
			clash.UserCodeHash = r.UserCodeHash
			err = s.Create(ctx, clash)
			if tc.swept && err != nil {
				t.Errorf("Create on a swept user code: %v", err)
			}
			if !tc.swept && !errors.Is(err, store.ErrConflict) {
				t.Errorf("Create on a kept user code: got %v, want ErrConflict", err)
			}
		})
	}

	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep: %d, %v; want nothing to do", n, err)
	}
}

func TestBackgroundSweeper(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s, err := Open(filepath.Join(t.TempDir(), "devicegate.db"), Options{Now: c.Now, SweepEvery: 5 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := record(c, "a", time.Minute)
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute + store.Retention + time.Second)
	// A budget against hanging only: the sweeper runs every 5 ms, but a
	// loaded machine can leave its goroutine unscheduled for seconds.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		_, err := s.Get(ctx, r.ID)
		if errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExpired) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper did not remove the record: Get says %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devicegate.db")
	first := open(t, path, nil)

	// Without a lock timeout bbolt waits for the lock forever: the
	// watchdog catches that. It is a minute, not a small multiple of
	// lockTimeout, because bbolt polls the lock with sleeps that a loaded
	// machine stretches; so it guards against hanging, not the exact wait.
	type opened struct {
		s   *Store
		err error
	}
	res := make(chan opened, 1)
	go func() {
		s, err := Open(path, Options{SweepEvery: -1, Logger: quiet})
		res <- opened{s, err}
	}()
	var second *Store
	var err error
	select {
	case o := <-res:
		second, err = o.s, o.err
	case <-time.After(time.Minute):
		t.Fatal("a second Open of a held file still waits for the lock after a minute")
	}
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a held file succeeded")
	}
	if !strings.Contains(err.Error(), "(waited "+lockTimeout.String()+")") {
		t.Errorf("error %q does not name the %s lock timeout", err, lockTimeout)
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("got %v, want ErrLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "locked by another devicegate process") {
		t.Errorf("error %q does not name the file and the cause", msg)
	}

	// Once the first holder is gone the file opens again.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path, nil)
}

func TestUndecodableRecord(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		value string
	}{
		{"not JSON", "\x00\xff garbage"},
		{"truncated", `{"rev":3,"record":{"id":"dev-a"`},
		{"wrong types", `{"rev":"three","record":{"id":"dev-a","interval":"five"}}`},
		{"bad time", `{"rev":3,"record":{"id":"dev-a","expires_at":"soon"}}`},
		{"no record", `{"rev":3}`},
		{"no revision", `{"record":{"id":"dev-a","user_code_hash":"usr-a"}}`},
		{"ID mismatch", `{"rev":3,"record":{"id":"dev-b","user_code_hash":"usr-a"}}`},
		{"JSON null", `null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := storetest.NewClock()
			path := filepath.Join(t.TempDir(), "devicegate.db")
			s := open(t, path, c.Now)
			r := record(c, "a", 10*time.Minute)
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			corrupt(t, path, r.ID, tc.value)
			s = open(t, path, c.Now)

			reads := map[string]func() error{
				"Get":           func() error { _, err := s.Get(ctx, r.ID); return err },
				"GetByUserCode": func() error { _, err := s.GetByUserCode(ctx, r.UserCodeHash); return err },
				"Update": func() error {
					_, err := s.Update(ctx, r.ID, func(*store.Record) error {
						t.Error("Update called fn for an undecodable record")
						return nil
					})
					return err
				},
			}
			for op, read := range reads {
				err := read()
				if !errors.Is(err, ErrUndecodable) || errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s: got %v, want ErrUndecodable", op, err)
				}
				if err != nil && (!strings.Contains(err.Error(), "undecodable") || strings.Contains(err.Error(), r.UserCodeHash)) {
					t.Errorf("%s: error %q must say undecodable and hold no key", op, err)
				}
			}

			// The sweeper keeps what it cannot read, even long after.
			c.Advance(24 * time.Hour)
			if n, err := s.Sweep(ctx); err != nil || n != 0 {
				t.Errorf("Sweep: %d, %v; want it to keep the record", n, err)
			}
			// Delete clears it and its user code, so both keys are free.
			if err := s.Delete(ctx, r.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if indexed(t, s, r.UserCodeHash) {
				t.Error("Delete left the user-code index entry")
			}
			fresh := record(c, "a", 10*time.Minute)
			if err := s.Create(ctx, fresh); err != nil {
				t.Errorf("Create after deleting the damaged record: %v", err)
			}
		})
	}
}

// indexed reports whether the user-code bucket holds an entry for hash.
func indexed(t *testing.T, s *Store, hash string) bool {
	t.Helper()
	var found bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		found = tx.Bucket(userCodesBucket).Get([]byte(hash)) != nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// corrupt overwrites the stored value of id behind the store's back.
func corrupt(t *testing.T, path, id, value string) {
	t.Helper()
	behindTheBack(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket(recordsBucket).Put([]byte(id), []byte(value))
	})
}

// behindTheBack runs fn in a write transaction on the file at path, opened
// without the store (which must be closed).
func behindTheBack(t *testing.T, path string, fn func(*bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "devicegate.db")
	open(t, path, nil)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("created directory mode %v is open to others", perm)
	}
}

func TestCancelledContext(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := storetest.NewClock()
	ops := map[string]func() error{
		"Create":        func() error { return s.Create(ctx, record(c, "a", time.Minute)) },
		"Get":           func() error { _, err := s.Get(ctx, "x"); return err },
		"GetByUserCode": func() error { _, err := s.GetByUserCode(ctx, "x"); return err },
		"Update": func() error {
			_, err := s.Update(ctx, "x", func(*store.Record) error { return nil })
			return err
		},
		"Delete": func() error { return s.Delete(ctx, "x") },
		"Ping":   func() error { return s.Ping(ctx) },
		"Sweep":  func() error { _, err := s.Sweep(ctx); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
	}
}

func TestClosedStore(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping on a closed store succeeded")
	}
}

func TestCreateNeedsKeys(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), nil)
	for _, r := range []*store.Record{{UserCodeHash: "u"}, {ID: "d"}} {
		if err := s.Create(context.Background(), r); err == nil {
			t.Errorf("Create(%+v) without both keys succeeded", r)
		}
	}
}

// FuzzDecode: no stored value, however damaged, panics the decoder; what
// it accepts carries the key it was stored under.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("id1"), []byte(`{"rev":3,"record":{"id":"id1","status":"pending","expires_at":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte("id1"), []byte(`{"rev":0,"record":null}`))
	f.Add([]byte("x"), []byte(`{"rev":1,"record":{"id":"y"}}`))
	f.Add([]byte("x"), []byte(`[`))
	f.Add([]byte("id1"), []byte(`{"rev":7,"rev":8,"record":{"id":"id1"}}`))
	f.Add([]byte(""), []byte(``))
	f.Fuzz(func(t *testing.T, id, v []byte) {
		peekRev(v) // must not panic on anything
		r, rev, err := decode(id, v)
		if err != nil {
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("error %v does not match ErrUndecodable", err)
			}
			return
		}
		if r.ID != string(id) || rev == 0 || r.Version != strconv.FormatUint(rev, 10) {
			t.Fatalf("decoded %+v for key %q", r, id)
		}
		// peekRev agrees with decode on every value put writes; on a
		// hand-made one (a repeated "rev") it may not, and the read path
		// then keeps no decoded copy (live).
		if peeked, ok := peekRev(v); ok && peeked == 0 {
			t.Fatalf("peekRev accepted revision 0")
		}
	})
}

// version names a revision, and an overlay on it, as "rev" and "rev.seq".
func TestVersionNames(t *testing.T) {
	for _, c := range []struct {
		rev, seq uint64
		want     string
	}{
		{1, 0, "1"},
		{42, 7, "42.7"},
		{10, 1796335842123456789, "10.1796335842123456789"},
		{1<<64 - 1, 1<<64 - 1, "18446744073709551615.18446744073709551615"},
		{0, 0, "0"},
	} {
		if got := version(c.rev, c.seq); got != c.want {
			t.Errorf("version(%d, %d) = %q, want %q", c.rev, c.seq, got, c.want)
		}
	}
}
