package memory_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(_ *testing.T, now store.Clock) store.Store { return memory.New(now) })
}

func TestCounterConformance(t *testing.T) {
	storetest.RunCounter(t, func(_ *testing.T, now store.Clock) store.Counter { return memory.New(now) })
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewClock()
	s := memory.New(c.Now)
	rec := func(name string, life time.Duration) *store.Record {
		return &store.Record{ID: "dev-" + name, UserCodeHash: "usr-" + name, ClientID: "tv", Status: store.StatusPending,
			CreatedAt: c.Now(), ExpiresAt: c.Now().Add(life), Interval: 5}
	}
	// More than one sweep step of records past retention, and records on
	// either side of it.
	const old = 600
	for i := range old {
		if err := s.Create(ctx, rec(fmt.Sprint("old-", i), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	live, within := rec("live", 2*time.Hour), rec("within", time.Hour-time.Minute)
	exact := rec("exact", time.Hour-store.Retention) // exactly at retention: kept
	moved := rec("moved", time.Minute)
	for _, r := range []*store.Record{live, within, exact, moved} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(ctx, moved.ID, func(r *store.Record) error { r.ExpiresAt = r.ExpiresAt.Add(3 * time.Hour); return nil }); err != nil {
		t.Fatal(err)
	}
	s.Incr(ctx, "ended", time.Minute)
	c.Advance(time.Hour)

	n, err := s.Sweep(ctx)
	if err != nil || n != old {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, old)
	}
	for _, r := range []*store.Record{live, moved} {
		if _, err := s.Get(ctx, r.ID); err != nil {
			t.Errorf("%s: %v, want it live", r.ID, err)
		}
	}
	for _, r := range []*store.Record{within, exact} {
		if _, err := s.Get(ctx, r.ID); !errors.Is(err, store.ErrExpired) {
			t.Errorf("%s: %v, want ErrExpired (kept for retention)", r.ID, err)
		}
	}
	if _, err := s.Get(ctx, "dev-old-0"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
		t.Errorf("swept record: %v", err)
	}
	// A swept user code is free again; the ended count starts over.
	if err := s.Create(ctx, rec("old-1", time.Minute)); err != nil {
		t.Errorf("Create on a swept key: %v", err)
	}
	if n, _, _ := s.Incr(ctx, "ended", time.Minute); n != 1 {
		t.Errorf("count after its window ended = %d, want 1", n)
	}
	c.Advance(time.Nanosecond)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Errorf("Sweep a nanosecond past retention = %d, %v; want the exact one", n, err)
	}
	if s.SweepPause() <= 0 {
		t.Error("SweepPause not recorded")
	}
}

// What makes a store of 100k flows cheap to hold: a record is one heap
// object the garbage collector marks without looking inside (the decoded
// form was a dozen pointers in several objects). The count of live heap
// objects per record stays near one.
func TestRecordsAreOneObject(t *testing.T) {
	const n = 20_000
	ctx := context.Background()
	now := time.Now()
	s := memory.New(func() time.Time { return now })
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		// Hex digests, as deviceflow.Hasher makes them.
		id, uc := fmt.Sprintf("%064x", i), fmt.Sprintf("%064x", n+i)
		r := &store.Record{ID: id, UserCodeHash: uc, ClientID: "tv", Scopes: []string{"streaming", "user-read-email"},
			Status: store.StatusPending, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Interval: 5, StateHash: fmt.Sprint("state", i)}
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perRecord := float64(after.HeapObjects-before.HeapObjects) / n
	t.Logf("%.2f live heap objects per record", perRecord)
	if perRecord > 1.5 {
		t.Errorf("%.2f live heap objects per record, want about 1", perRecord)
	}
	runtime.KeepAlive(s)
}
