package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

// expiryEntries counts the expiry index's entries of kind k.
func expiryEntries(t *testing.T, s *Store, k kind) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(expiryBucket).ForEach(func(key, _ []byte) error {
			if kind(key[8]) == k {
				n++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSweepInBatches(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)
	const expired, live = 3*sweepBatch + 5, 7
	for i := range expired {
		if err := s.Create(ctx, record(c, fmt.Sprintf("old-%d", i), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range live {
		if err := s.Create(ctx, record(c, fmt.Sprintf("live-%d", i), 2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Hour)
	n, err := s.Sweep(ctx)
	if err != nil || n != expired {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, expired)
	}
	if s.SweepPause() <= 0 {
		t.Error("SweepPause not recorded")
	}
	for i := range live {
		if _, err := s.Get(ctx, record(c, fmt.Sprintf("live-%d", i), 0).ID); err != nil {
			t.Errorf("live record %d: %v", i, err)
		}
	}
	if got := expiryEntries(t, s, kindRecord); got != live {
		t.Errorf("%d record entries left in the expiry index, want %d (the live ones)", got, live)
	}
	// A sweep with nothing due touches nothing: no write transaction, so
	// no commit holds the writers up.
	stats := s.db.Stats()
	writes := stats.TxStats.GetWrite()
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep = %d, %v", n, err)
	}
	stats = s.db.Stats()
	if got := stats.TxStats.GetWrite(); got != writes {
		t.Errorf("a sweep with nothing due wrote %d pages", got-writes)
	}
}

// An entry is a hint: a record whose expiry moved later is not swept at
// the old time, and the stale entry goes.
func TestSweepFollowsMovedExpiry(t *testing.T) {
	ctx := context.Background()
	s, c, r := withRecord(t, filepath.Join(t.TempDir(), "devicegate.db"), time.Minute)
	if _, err := s.Update(ctx, r.ID, func(r *store.Record) error { r.ExpiresAt = r.ExpiresAt.Add(2 * time.Hour); return nil }); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; the record is live", n, err)
	}
	if got := expiryEntries(t, s, kindRecord); got != 1 {
		t.Errorf("%d record entries, want 1 (the moved expiry)", got)
	}
	c.Advance(3 * time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want the record swept at its new time", n, err)
	}
}

// A deleted record leaves a stale entry, which the sweep drops without
// counting it.
func TestSweepDropsStaleEntries(t *testing.T) {
	ctx := context.Background()
	s, c, r := withRecord(t, filepath.Join(t.TempDir(), "devicegate.db"), time.Minute)
	if err := s.Delete(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if got := expiryEntries(t, s, kindRecord); got != 0 {
		t.Errorf("%d entries left", got)
	}
}

// writeFormat1 writes a file as devicegate wrote it before the expiry
// index: three buckets and no meta.
func writeFormat1(t *testing.T, path string, recs []*store.Record, counters map[string]counterValue) {
	t.Helper()
	behindTheBack(t, path, func(tx *bbolt.Tx) error {
		rb, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		ub, err := tx.CreateBucket([]byte("user_codes"))
		if err != nil {
			return err
		}
		cb, err := tx.CreateBucket([]byte("counters"))
		if err != nil {
			return err
		}
		for _, r := range recs {
			rev, _ := rb.NextSequence()
			v, _ := json.Marshal(map[string]any{"rev": rev, "record": r})
			if err := rb.Put([]byte(r.ID), v); err != nil {
				return err
			}
			if err := ub.Put([]byte(r.UserCodeHash), []byte(r.ID)); err != nil {
				return err
			}
		}
		for k, c := range counters {
			v, _ := json.Marshal(c)
			if err := cb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		bb, err := tx.CreateBucket([]byte("bindings"))
		if err != nil {
			return err
		}
		v, _ := json.Marshal(store.Binding{ID: "rt-old", ClientID: "tv", ExpiresAt: recs[0].ExpiresAt})
		if err := bb.Put([]byte("rt-old"), v); err != nil {
			return err
		}
		return rb.Put([]byte("dev-damaged"), []byte("{not json"))
	})
}

func TestMigrateFormat1(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "devicegate.db")
	old, live := record(c, "old", time.Minute), record(c, "live", 2*time.Hour)
	writeFormat1(t, path, []*store.Record{old, live}, map[string]counterValue{
		"1m0s|ended": {N: 3, Reset: c.Now().Add(time.Minute)},
		"1h0m0s|on":  {N: 1, Reset: c.Now().Add(2 * time.Hour)},
	})

	s := open(t, path, c.Now)
	var format string
	s.db.View(func(tx *bbolt.Tx) error { format = string(tx.Bucket(metaBucket).Get([]byte("format"))); return nil })
	if format != "2" {
		t.Errorf("format after Open = %q, want 2", format)
	}
	if got := expiryEntries(t, s, kindRecord); got != 2 {
		t.Errorf("%d record entries after migration, want 2 (the damaged record has none)", got)
	}
	if got := expiryEntries(t, s, kindCounter); got != 2 {
		t.Errorf("%d counter entries after migration, want 2", got)
	}
	if got := expiryEntries(t, s, kindBinding); got != 1 {
		t.Errorf("%d binding entries after migration, want 1", got)
	}
	// Reads work as before.
	if got, err := s.GetByUserCode(ctx, live.UserCodeHash); err != nil || got.ID != live.ID {
		t.Fatalf("GetByUserCode after migration: %v, %v", got, err)
	}

	c.Advance(time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep after migration = %d, %v; want the old record", n, err)
	}
	if _, err := s.Get(ctx, old.ID); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
		t.Errorf("old record: %v", err)
	}
	if _, err := s.Get(ctx, live.ID); err != nil {
		t.Errorf("live record: %v", err)
	}
	var keys []string
	s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(countersBucket).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	})
	if len(keys) != 1 || keys[0] != "1h0m0s|on" {
		t.Errorf("counters after the sweep: %v", keys)
	}
	if _, err := s.GetBinding(ctx, "rt-old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired binding after the sweep: %v", err)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bindingsBucket).Get([]byte("rt-old")) != nil {
			return errors.New("the expired binding was not swept")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if _, err := s.Get(ctx, "dev-damaged"); !errors.Is(err, ErrUndecodable) {
		t.Errorf("damaged record: %v, want it kept and undecodable", err)
	}

	// A second Open migrates nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c.Now)
	if got := expiryEntries(t, s, kindRecord); got != 1 {
		t.Errorf("%d record entries after reopening, want 1", got)
	}
}

func TestNewerFormatRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devicegate.db")
	open(t, path, nil).Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(metaBucket).Put([]byte("format"), []byte("3")) })
	db.Close()
	if s, err := Open(path, Options{SweepEvery: -1, Logger: quiet}); err == nil {
		s.Close()
		t.Fatal("Open accepted a file of a newer format")
	}
}

// A sweep of many expired records is many small transactions, not one:
// between two slices a Create gets its commit (it runs here, inside the
// hook, before the next slice is sent), and the sweep still removes every
// expired record.
func TestSweepInSlicesLetsWritersIn(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)
	const expired = 2*maxSweepBatch + 10
	for i := range expired {
		if err := s.Create(ctx, record(c, fmt.Sprintf("old-%d", i), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Hour)
	var slices, created int
	s.afterSlice = func(removed int) {
		slices++
		if removed > maxSweepBatch {
			t.Errorf("a slice removed %d records, more than %d", removed, maxSweepBatch)
		}
		if err := s.Create(ctx, record(c, fmt.Sprintf("new-%d", slices), time.Hour)); err != nil {
			t.Errorf("Create between slices: %v", err)
			return
		}
		created++
	}
	n, err := s.Sweep(ctx)
	if err != nil || n != expired {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, expired)
	}
	if slices < 3 || created != slices {
		t.Errorf("%d slices, %d Creates between them; want at least 3 slices, a Create after each", slices, created)
	}
	if got := expiryEntries(t, s, kindRecord); got != created {
		t.Errorf("%d record entries left in the expiry index, want %d (the new ones)", got, created)
	}
}

func TestSweepHolds(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)
	if n, _, _ := s.SweepHolds(); n != 0 {
		t.Fatalf("SweepHolds before any sweep: %d slices", n)
	}
	for i := range 3 * maxSweepBatch {
		if err := s.Create(ctx, record(c, fmt.Sprintf("old-%d", i), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Hour)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	n, p50, p99 := s.SweepHolds()
	if n < 3 || p50 <= 0 || p99 < p50 || p99 > s.SweepPause() {
		t.Errorf("SweepHolds = %d, %s, %s (longest %s)", n, p50, p99, s.SweepPause())
	}
	// A sweep with nothing due keeps the last figures.
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _, _ := s.SweepHolds(); m != n {
		t.Errorf("an empty sweep changed SweepHolds to %d slices", m)
	}
}

// blockedWriters counts goroutines waiting to hand a write to the
// committer (writeTimed's select on sending to its unbuffered channel).
func blockedWriters() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, "bolt.(*Store).writeTimed") {
			n++
		}
	}
	return n
}

// waitBlockedWriters waits until n writes wait for the committer.
func waitBlockedWriters(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing
	for blockedWriters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes never waited for the committer together", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A sweep slice that shares its group with a failing write is rolled back
// with the group and run again alone (group.go). Its second run must
// report only what it removed then: what the rolled-back run collected is
// not removed and must not be counted, and the failing write must not
// take the sweep's work with it.
func TestSweepSliceInRolledBackGroup(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := open(t, filepath.Join(t.TempDir(), "devicegate.db"), c.Now)
	const expired = 5
	for i := range expired {
		if err := s.Create(ctx, record(c, fmt.Sprintf("old-%d", i), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Hour)

	// A first write holds the committer, so the sweep's slice and the
	// failing write queue behind it and make up the next group, in the
	// order they queued (a channel's senders are served first come,
	// first served): the slice runs first, then the write fails.
	release, holding := make(chan struct{}), make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let) // a failed wait must not leave Close waiting for the holder
	gate := make(chan error, 1)
	go func() {
		gate <- s.write(func(*bbolt.Tx) error { close(holding); <-release; return nil })
	}()
	<-holding
	type sweepResult struct {
		n   int
		err error
	}
	swept := make(chan sweepResult, 1)
	go func() { n, err := s.Sweep(ctx); swept <- sweepResult{n, err} }()
	waitBlockedWriters(t, 1)
	boom := errors.New("boom")
	failed := make(chan error, 1)
	go func() {
		failed <- s.write(func(tx *bbolt.Tx) error {
			if _, err := tx.CreateBucket([]byte("left-behind")); err != nil {
				return err
			}
			return boom
		})
	}()
	waitBlockedWriters(t, 2)
	let()

	if err := <-gate; err != nil {
		t.Fatalf("the holding write: %v", err)
	}
	if err := <-failed; !errors.Is(err, boom) {
		t.Errorf("the failing write got %v, want its own error", err)
	}
	res := <-swept
	if res.err != nil || res.n != expired {
		t.Errorf("Sweep = %d, %v; want %d (counted once, though its slice ran twice)", res.n, res.err, expired)
	}
	for i := range expired {
		if _, err := s.Get(ctx, record(c, fmt.Sprintf("old-%d", i), 0).ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired record %d: %v, want swept", i, err)
		}
	}
	if got := expiryEntries(t, s, kindRecord); got != 0 {
		t.Errorf("%d record entries left in the expiry index", got)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("left-behind")) != nil {
			return errors.New("the failing write's bucket was committed")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("a second Sweep = %d, %v; want nothing left", n, err)
	}
}
