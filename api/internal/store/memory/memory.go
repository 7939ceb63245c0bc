// Package memory is an in-process store.Store for tests and for a single
// process that may lose its records on restart. A mutex serialises every
// operation, which is what makes Update a compare-and-swap here.
package memory

import (
	"container/heap"
	"context"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Store keeps records in maps guarded by one mutex.
type Store struct {
	now store.Clock

	mu      sync.Mutex
	records map[string]*store.Record // by ID
	byUser  map[string]string        // user-code hash → ID
	version uint64
	due     dueHeap // what the sweep may remove, soonest first

	counters map[string]counter // "window length|key" → count
	bindings map[string]*store.Binding

	longestHold time.Duration // the longest sweep step, for benchmarks
}

type counter struct {
	n     int
	reset time.Time
	m     map[string]int // a group's members (IncrMember)
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Counter = (*Store)(nil)
)

// New returns an empty store that reads the time from now (time.Now if nil).
func New(now store.Clock) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, records: map[string]*store.Record{}, byUser: map[string]string{}, counters: map[string]counter{}, bindings: map[string]*store.Binding{}}
}

// sweepStep bounds the entries one sweep step removes while it holds the
// lock; Create and Incr run one step when something is due, so the sweep's
// work is spread over the calls instead of pausing one of them.
const sweepStep = 256

// recordDue is the first instant at which r is strictly more than
// store.Retention past expiry, as every backend sweeps.
func recordDue(r *store.Record) time.Time { return r.ExpiresAt.Add(store.Retention + time.Nanosecond) }

// dueKind says what a dueItem points at.
type dueKind uint8

const (
	dueRecord dueKind = iota
	dueCounter
	dueBinding
)

// dueItem is an entry of the expiry heap: an item of kind, removable from
// at. An entry is a hint: the sweep checks the item is still due (a
// deleted record, a count that started a new window, a renewed binding).
type dueItem struct {
	at   time.Time
	key  string
	kind dueKind
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Create implements store.Store.
func (s *Store) Create(_ context.Context, r *store.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	if _, ok := s.records[r.ID]; ok {
		return store.ErrConflict
	}
	if _, ok := s.byUser[r.UserCodeHash]; ok {
		return store.ErrConflict
	}
	c := r.Clone()
	s.version++
	c.Version = strconv.FormatUint(s.version, 10)
	s.records[c.ID] = c
	s.byUser[c.UserCodeHash] = c.ID
	heap.Push(&s.due, dueItem{at: recordDue(c), key: c.ID})
	return nil
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, id string) (*store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveLocked(id)
}

// GetByUserCode implements store.Store.
func (s *Store) GetByUserCode(_ context.Context, userCodeHash string) (*store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byUser[userCodeHash]
	if !ok {
		return nil, store.ErrNotFound
	}
	return s.liveLocked(id)
}

// Update implements store.Store. Holding the lock across fn means fn runs
// exactly once here; callers must not rely on that.
func (s *Store) Update(ctx context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.liveLocked(id)
	if err != nil {
		return nil, err
	}
	if err := fn(cur); err != nil {
		return nil, err
	}
	old := s.records[id]
	cur.ID, cur.UserCodeHash = old.ID, old.UserCodeHash
	if !cur.ExpiresAt.Equal(old.ExpiresAt) {
		heap.Push(&s.due, dueItem{at: recordDue(cur), key: id})
	}
	s.version++
	cur.Version = strconv.FormatUint(s.version, 10)
	s.records[id] = cur.Clone()
	return cur, nil
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.records[id]; ok {
		delete(s.byUser, r.UserCodeHash)
		delete(s.records, id)
	}
	return nil
}

// Incr implements store.Counter.
func (s *Store) Incr(_ context.Context, key string, window time.Duration) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked()
	k := window.String() + "|" + key
	reset := store.WindowStart(now, window).Add(window)
	c := s.counters[k]
	if !c.reset.Equal(reset) {
		c = counter{reset: reset}
		heap.Push(&s.due, dueItem{at: reset, key: k, kind: dueCounter})
	}
	c.n++
	s.counters[k] = c
	return c.n, reset, nil
}

// IncrMember implements store.Counter. A group lives in the counters map
// under a key of its own ("g" marks it), swept like a count.
func (s *Store) IncrMember(_ context.Context, group, member string, window time.Duration) (map[string]int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked()
	k := window.String() + "|g|" + group
	reset := store.WindowStart(now, window).Add(window)
	c := s.counters[k]
	if !c.reset.Equal(reset) || c.m == nil {
		c = counter{reset: reset, m: map[string]int{}}
		heap.Push(&s.due, dueItem{at: reset, key: k, kind: dueCounter})
	}
	c.m[member]++
	s.counters[k] = c
	return maps.Clone(c.m), reset, nil
}

// Ping implements store.Store.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// liveLocked returns a copy of the record, or the error its age calls for.
func (s *Store) liveLocked(id string) (*store.Record, error) {
	r, ok := s.records[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	if r.Expired(s.now()) {
		return nil, store.ErrExpired
	}
	return r.Clone(), nil
}

// sweepLocked removes at most sweepStep due items, so that a long-running
// process does not grow without bound and no caller waits for more than a
// bounded step. It reports whether more are due.
func (s *Store) sweepLocked() (removed int, more bool) {
	now := s.now()
	if len(s.due) == 0 || s.due[0].at.After(now) {
		return 0, false
	}
	start := time.Now() // wall time: this measures the pause, it decides nothing
	defer func() { s.longestHold = max(s.longestHold, time.Since(start)) }()
	cutoff := now.Add(-store.Retention)
	for n := 0; len(s.due) > 0 && !s.due[0].at.After(now); n++ {
		if n == sweepStep {
			return removed, true
		}
		it := heap.Pop(&s.due).(dueItem)
		switch it.kind {
		case dueCounter:
			if c, ok := s.counters[it.key]; ok && !c.reset.After(now) {
				delete(s.counters, it.key)
			}
			continue
		case dueBinding:
			if b, ok := s.bindings[it.key]; ok && b.Expired(now) {
				delete(s.bindings, it.key)
			}
			continue
		}
		// A record whose expiry moved later has another entry.
		if r, ok := s.records[it.key]; ok && r.ExpiresAt.Before(cutoff) {
			delete(s.byUser, r.UserCodeHash)
			delete(s.records, it.key)
			removed++
		}
	}
	return removed, false
}

// Sweep removes every record past its retention and every ended count,
// one bounded step at a time (Create and Incr also sweep a step when
// something is due), and returns how many records it removed.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		s.mu.Lock()
		n, more := s.sweepLocked()
		s.mu.Unlock()
		total += n
		if !more {
			return total, nil
		}
	}
}

// SweepPause reports the longest time one sweep step held the store's lock
// (in Sweep, Create or Incr) — how long any other call could have waited
// for it.
func (s *Store) SweepPause() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.longestHold
}
