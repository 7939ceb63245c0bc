package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// stored reads the record as it is in the file, without pacing laid over.
func stored(t *testing.T, s *Store, id string) (*store.Record, uint64) {
	t.Helper()
	var (
		r   *store.Record
		rev uint64
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(recordsBucket).Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		r, rev, err = decode([]byte(id), v)
		return err
	})
	if err != nil {
		t.Fatalf("reading the file: %v", err)
	}
	return r, rev
}

// withRecord opens a store at path (a new file if empty) holding one
// pending record of the given lifetime.
func withRecord(t *testing.T, path string, life time.Duration) (*Store, *storetest.Clock, *store.Record) {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "devicegate.db")
	}
	c := storetest.NewClock()
	s := open(t, path, c.Now)
	r := record(c, "a", life)
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return s, c, r
}

func poll(c *storetest.Clock) func(*store.Record) error {
	return func(r *store.Record) error {
		r.LastPoll = c.Now()
		return nil
	}
}

func TestPacingStaysInMemory(t *testing.T) {
	ctx := context.Background()
	s, c, r := withRecord(t, "", 10*time.Minute)
	_, rev0 := stored(t, s, r.ID)

	c.Advance(5 * time.Second)
	out, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		rec.LastPoll = c.Now()
		rec.Interval = 10
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	onDisk, rev := stored(t, s, r.ID)
	if rev != rev0 || !onDisk.LastPoll.IsZero() || onDisk.Interval != 5 {
		t.Errorf("a pacing-only update reached the file: revision %d→%d, %+v", rev0, rev, onDisk)
	}
	for name, get := range map[string]func() (*store.Record, error){
		"Get":           func() (*store.Record, error) { return s.Get(ctx, r.ID) },
		"GetByUserCode": func() (*store.Record, error) { return s.GetByUserCode(ctx, r.UserCodeHash) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.LastPoll.Equal(c.Now()) || got.Interval != 10 || got.Version != out.Version {
			t.Errorf("%s = LastPoll %v, Interval %d, Version %q; want %v, 10, %q", name, got.LastPoll, got.Interval, got.Version, c.Now(), out.Version)
		}
	}

	// Anything else is written, and takes the pacing with it.
	approved, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		rec.Status = store.StatusApproved
		rec.Token = []byte("tok")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	onDisk, rev = stored(t, s, r.ID)
	if rev == rev0 || onDisk.Status != store.StatusApproved || !onDisk.LastPoll.Equal(c.Now()) || onDisk.Interval != 10 {
		t.Errorf("after a durable update the file holds revision %d (was %d), %+v", rev, rev0, onDisk)
	}
	if approved.Version != onDisk.Version {
		t.Errorf("Update returned Version %q, the file has %q", approved.Version, onDisk.Version)
	}
	if n := s.pace.size(); n != 0 {
		t.Errorf("%d overlays kept after the durable write", n)
	}
}

func TestPacingDroppedWithRecord(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)
	deleted, swept := record(c, "deleted", 10*time.Minute), record(c, "swept", time.Minute)
	for _, r := range []*store.Record{deleted, swept} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, r.ID, poll(c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.pace.size(); n != 2 {
		t.Fatalf("%d overlays, want 2", n)
	}
	if err := s.Delete(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	if n := s.pace.size(); n != 1 {
		t.Errorf("after Delete %d overlays, want 1", n)
	}
	c.Advance(time.Minute + store.Retention + time.Second)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 record swept", n, err)
	}
	if n := s.pace.size(); n != 0 {
		t.Errorf("after Sweep %d overlays, want 0", n)
	}
	// A record created later under a swept ID starts without its pacing.
	again := record(c, "swept", 10*time.Minute)
	if err := s.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, again.ID); err != nil || !got.LastPoll.IsZero() {
		t.Errorf("re-created record = %+v, %v; want no last poll", got, err)
	}
}

// TestPacingLosesNoUpdate races pacing-only and durable updates of one
// record: every increment of either kind must survive.
func TestPacingLosesNoUpdate(t *testing.T) {
	ctx := context.Background()
	s, _, r := withRecord(t, "", 10*time.Minute)
	const each = 40
	var wg sync.WaitGroup
	for range each {
		wg.Go(func() {
			if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error { rec.Interval++; return nil }); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error { rec.Failures++; return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Interval != r.Interval+each || got.Failures != each {
		t.Errorf("Interval %d, Failures %d; want %d and %d", got.Interval, got.Failures, r.Interval+each, each)
	}
}

func TestPacingUpdateErrors(t *testing.T) {
	ctx := context.Background()
	s, c, r := withRecord(t, "", time.Minute)
	boom := errors.New("boom")
	if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error { rec.LastPoll = c.Now(); return boom }); !errors.Is(err, boom) {
		t.Errorf("Update with a failing fn = %v, want boom", err)
	}
	if n := s.pace.size(); n != 0 {
		t.Errorf("a failed update kept %d overlays", n)
	}
	c.Advance(time.Minute)
	if _, err := s.Update(ctx, r.ID, poll(c)); !errors.Is(err, store.ErrExpired) {
		t.Errorf("pacing an expired record = %v, want ErrExpired", err)
	}
}

// Reads of an unchanged record are served from its decoded copy; what a
// caller does with the record it got must never reach that copy.
func TestDecodedCopyNotAliased(t *testing.T) {
	ctx := context.Background()
	s, _, r := withRecord(t, filepath.Join(t.TempDir(), "devicegate.db"), 10*time.Minute)
	for range 2 {
		got, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.StatusPending || got.Scopes[0] != "streaming" {
			t.Fatalf("read %+v: an earlier caller's change leaked into the store", got)
		}
		got.Status, got.Scopes[0] = store.StatusDenied, "changed"
	}
	if _, err := s.Update(ctx, r.ID, func(rec *store.Record) error {
		if rec.Status != store.StatusPending || rec.Scopes[0] != "streaming" {
			t.Errorf("Update saw %+v", rec)
		}
		rec.Scopes[0] = "changed-in-fn"
		return errors.New("declined")
	}); err == nil {
		t.Fatal("Update did not return fn's error")
	}
	if got, _ := s.Get(ctx, r.ID); got.Scopes[0] != "streaming" {
		t.Errorf("a declined update's change leaked: %v", got.Scopes)
	}
}
