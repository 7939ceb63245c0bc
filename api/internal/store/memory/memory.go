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

// Store keeps records in maps guarded by one mutex. Records are held
// encoded, under pointer-free keys (encode.go says why).
type Store struct {
	now store.Clock

	mu      sync.Mutex
	records map[key]string // by ID: the record, encoded
	byUser  map[key]key    // user-code hash → ID
	version uint64
	recDue  recHeap // records the sweep may remove, soonest first
	due     dueHeap // counters and bindings the sweep may remove
	scratch []byte  // encode's buffer, reused under mu

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
	return &Store{now: now, records: map[key]string{}, byUser: map[key]key{}, counters: map[string]counter{}, bindings: map[string]*store.Binding{}}
}

// sweepStep bounds the entries one sweep step removes while it holds the
// lock; Create and Incr run one step when something is due, so the sweep's
// work is spread over the calls instead of pausing one of them.
const sweepStep = 256

// recordDue is the first instant at which a record expiring at expires is
// strictly more than store.Retention past expiry, as every backend sweeps.
func recordDue(expires time.Time) instant {
	return instantOf(expires.Add(store.Retention + time.Nanosecond))
}

// recItem is an entry of the records' expiry heap, pointer-free like the
// records: the record with key id is removable from at. Like a dueItem it
// is a hint: the sweep checks the record is still due.
type recItem struct {
	at instant
	id key
}

type recHeap []recItem

func (h recHeap) Len() int           { return len(h) }
func (h recHeap) Less(i, j int) bool { return h[j].at.after(h[i].at) }
func (h recHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *recHeap) Push(x any)        { *h = append(*h, x.(recItem)) }
func (h *recHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// dueKind says what a dueItem points at.
type dueKind uint8

const (
	dueCounter dueKind = iota
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
	id, uc := keyOf(r.ID), keyOf(r.UserCodeHash)
	if _, ok := s.records[id]; ok {
		return store.ErrConflict
	}
	if _, ok := s.byUser[uc]; ok {
		return store.ErrConflict
	}
	s.putLocked(id, r)
	s.byUser[uc] = id
	heap.Push(&s.recDue, recItem{at: recordDue(r.ExpiresAt), id: id})
	return nil
}

// putLocked stores r, encoded, under id with the next version, and
// returns that version.
func (s *Store) putLocked(id key, r *store.Record) (version string) {
	s.version++
	var v [20]byte
	ver := strconv.AppendUint(v[:0], s.version, 10)
	s.scratch = encode(s.scratch[:0], r, string(ver))
	blob := string(s.scratch)
	if cap(s.scratch) > 64<<10 { // a rare large record's buffer is not kept
		s.scratch = nil
	}
	s.records[id] = blob
	return blob[len(blob)-len(ver):] // the version is the blob's last field
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
	id, ok := s.byUser[keyOf(userCodeHash)]
	if !ok {
		return nil, store.ErrNotFound
	}
	r, err := s.liveKeyLocked(id)
	if err == nil && r.UserCodeHash != userCodeHash { // only for a keyDigest collision
		return nil, store.ErrNotFound
	}
	return r, err
}

// Update implements store.Store. Holding the lock across fn means fn runs
// exactly once here; callers must not rely on that.
func (s *Store) Update(ctx context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(id)
	cur, err := s.liveIDLocked(k, id)
	if err != nil {
		return nil, err
	}
	oldID, oldUser, oldExpires := cur.ID, cur.UserCodeHash, cur.ExpiresAt
	if err := fn(cur); err != nil {
		return nil, err
	}
	cur.ID, cur.UserCodeHash = oldID, oldUser
	if !cur.ExpiresAt.Equal(oldExpires) {
		heap.Push(&s.recDue, recItem{at: recordDue(cur.ExpiresAt), id: k})
	}
	// cur is the caller's from here on; what is stored is its encoding,
	// which nothing the caller does to cur can reach.
	cur.Version = s.putLocked(k, cur)
	return cur, nil
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(id)
	if blob, ok := s.records[k]; ok && recordID(blob) == id {
		uc, _ := head(blob)
		delete(s.byUser, keyOf(uc))
		delete(s.records, k)
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
	return s.liveIDLocked(keyOf(id), id)
}

// liveIDLocked is liveLocked with the key of id already computed.
func (s *Store) liveIDLocked(k key, id string) (*store.Record, error) {
	r, err := s.liveKeyLocked(k)
	if err == nil && r.ID != id { // only for a keyDigest collision
		return nil, store.ErrNotFound
	}
	return r, err
}

func (s *Store) liveKeyLocked(k key) (*store.Record, error) {
	blob, ok := s.records[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	r := decode(blob)
	if r.Expired(s.now()) {
		return nil, store.ErrExpired
	}
	return r, nil
}

// sweepLocked removes at most sweepStep due items, so that a long-running
// process does not grow without bound and no caller waits for more than a
// bounded step. It reports whether more are due.
func (s *Store) sweepLocked() (removed int, more bool) {
	now := s.now()
	nowI := instantOf(now)
	recDue := func() bool { return len(s.recDue) > 0 && !s.recDue[0].at.after(nowI) }
	otherDue := func() bool { return len(s.due) > 0 && !s.due[0].at.After(now) }
	if !recDue() && !otherDue() {
		return 0, false
	}
	start := time.Now() // wall time: this measures the pause, it decides nothing
	defer func() { s.longestHold = max(s.longestHold, time.Since(start)) }()
	cutoff := now.Add(-store.Retention)
	n := 0
	for ; recDue(); n++ {
		if n == sweepStep {
			return removed, true
		}
		it := heap.Pop(&s.recDue).(recItem)
		// A record whose expiry moved later has another entry.
		if blob, ok := s.records[it.id]; ok {
			if uc, expires := head(blob); expires.Before(cutoff) {
				delete(s.byUser, keyOf(uc))
				delete(s.records, it.id)
				removed++
			}
		}
	}
	for ; otherDue(); n++ {
		if n == sweepStep {
			return removed, true
		}
		it := heap.Pop(&s.due).(dueItem)
		switch it.kind {
		case dueCounter:
			if c, ok := s.counters[it.key]; ok && !c.reset.After(now) {
				delete(s.counters, it.key)
			}
		case dueBinding:
			if b, ok := s.bindings[it.key]; ok && b.Expired(now) {
				delete(s.bindings, it.key)
			}
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
