package cosmos

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

func pendingRecord(c *storetest.Clock, id string) *store.Record {
	return &store.Record{ID: id, UserCodeHash: "uc-" + id, ClientID: "tv", Status: store.StatusPending,
		CreatedAt: c.Now(), ExpiresAt: c.Now().Add(10 * time.Minute), Interval: 5}
}

// TestPacingStaysInTheInstance: an Update that changes only LastPoll and
// Interval is one point read and no write; the instance that made it reads
// it back (with a new Version), another instance on the same container
// does not, and the next durable write carries the figures into the item
// for every instance.
func TestPacingStaysInTheInstance(t *testing.T) {
	c := storetest.NewClock()
	a := open(t, c.Now)
	b := openWith(t, Options{Now: c.Now})
	b.container = a.container // a second instance of the same deployment
	ctx := context.Background()
	if err := a.Create(ctx, pendingRecord(c, "rec-pace")); err != nil {
		t.Fatal(err)
	}
	before, _ := a.Get(ctx, "rec-pace")
	a.ResetStats()
	out, err := a.Update(ctx, "rec-pace", func(r *store.Record) error { r.LastPoll, r.Interval = c.Now(), 10; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.PointReads != 1 || st.Replaces != 0 || st.Creates+st.Patches+st.Upserts+st.Deletes != 0 {
		t.Errorf("a pacing-only update sent %+v; want one point read", st)
	}
	got, _ := a.Get(ctx, "rec-pace")
	if !got.LastPoll.Equal(c.Now()) || got.Interval != 10 || got.Version == before.Version || got.Version != out.Version {
		t.Errorf("same instance reads LastPoll %v, interval %d, version %q (before %q, returned %q)", got.LastPoll, got.Interval, got.Version, before.Version, out.Version)
	}
	other, _ := b.Get(ctx, "rec-pace")
	if !other.LastPoll.IsZero() || other.Interval != 5 {
		t.Errorf("another instance reads LastPoll %v, interval %d; pacing is per instance", other.LastPoll, other.Interval)
	}

	a.ResetStats()
	if _, err := a.Update(ctx, "rec-pace", func(r *store.Record) error { r.Status = store.StatusAuthorizing; return nil }); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Replaces != 1 {
		t.Errorf("a durable update sent %+v; want a replace", st)
	}
	if a.pace.size() != 0 {
		t.Errorf("%d overlays kept after the durable write folded them in", a.pace.size())
	}
	other, _ = b.Get(ctx, "rec-pace")
	if !other.LastPoll.Equal(c.Now()) || other.Interval != 10 || other.Status != store.StatusAuthorizing {
		t.Errorf("after a durable write, another instance reads LastPoll %v, interval %d, status %v", other.LastPoll, other.Interval, other.Status)
	}

	if _, err := a.Update(ctx, "rec-pace", func(r *store.Record) error { r.Interval = 15; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "rec-pace"); err != nil {
		t.Fatal(err)
	}
	if a.pace.size() != 0 {
		t.Errorf("%d overlays kept after Delete", a.pace.size())
	}
}

// TestPacingIsCompareAndSwap: two polls of one record answered at once by
// one instance cannot both be taken as on time. The first reads the record
// and waits; the second reads, decides and keeps its pacing; the first
// must then decide again, on the second's figures.
func TestPacingIsCompareAndSwap(t *testing.T) {
	c := storetest.NewClock()
	s := open(t, c.Now)
	ctx := context.Background()
	if err := s.Create(ctx, pendingRecord(c, "rec-race")); err != nil {
		t.Fatal(err)
	}
	errEarly := errors.New("early")
	poll := func(r *store.Record) error {
		if !r.LastPoll.IsZero() {
			return errEarly
		}
		r.LastPoll = c.Now()
		return nil
	}
	first, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	calls := 0
	go func() {
		_, err := s.Update(ctx, "rec-race", func(r *store.Record) error {
			calls++
			if calls == 1 {
				close(first)
				<-release
			}
			return poll(r)
		})
		done <- err
	}()
	<-first
	if _, err := s.Update(ctx, "rec-race", poll); err != nil {
		t.Fatalf("second poll: %v", err)
	}
	close(release)
	if err := <-done; !errors.Is(err, errEarly) {
		t.Errorf("the first poll, overtaken, ended with %v; want it decided again and found early", err)
	}
	if calls != 2 {
		t.Errorf("the overtaken poll's function ran %d times, want 2 (once more on the new figures)", calls)
	}
}

// TestPacerIsBounded: a full map sheds the overlays of expired records
// first, then arbitrary ones, and never holds more than its bound.
func TestPacerIsBounded(t *testing.T) {
	c := storetest.NewClock()
	p := newPacer(c.Now(), 16)
	add := func(id string, life time.Duration) {
		r := &store.Record{ID: id, ExpiresAt: c.Now().Add(life), LastPoll: c.Now()}
		if !p.set(r, "e", 0, c.Now()) {
			t.Fatalf("set %s refused", id)
		}
	}
	for i := range 8 {
		add(string(rune('a'+i)), time.Minute)
	}
	add("live", time.Hour)
	for i := range 7 {
		add(string(rune('A'+i)), time.Hour)
	}
	c.Advance(2 * time.Minute) // the first eight expire
	add("new", time.Hour)
	if p.size() != 9 {
		t.Errorf("%d overlays after shedding the expired, want 9", p.size())
	}
	r := &store.Record{ID: "live"}
	if p.apply(r, "e") == 0 {
		t.Error("a live overlay was shed while expired ones made room")
	}
	for i := range 100 {
		add("x"+string(rune('0'+i)), time.Hour)
		if p.size() > 16 {
			t.Fatalf("%d overlays, bound 16", p.size())
		}
	}
}
