// Package memory is an in-process store.Store for tests and for a single
// process that may lose its records on restart. A mutex serialises every
// operation, which is what makes Update a compare-and-swap here.
package memory

import (
	"context"
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
	swept   time.Time

	counters map[string]counter // "window length|key" → count
	bindings map[string]*store.Binding
}

type counter struct {
	n     int
	reset time.Time
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
func (s *Store) Update(_ context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
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
	}
	c.n++
	s.counters[k] = c
	return c.n, reset, nil
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

// sweepLocked drops records past their retention, so that a long-running
// process does not grow without bound.
func (s *Store) sweepLocked() {
	now := s.now()
	if now.Sub(s.swept) < time.Minute {
		return
	}
	s.swept = now
	cutoff := now.Add(-store.Retention)
	for id, r := range s.records {
		if r.ExpiresAt.Before(cutoff) {
			delete(s.byUser, r.UserCodeHash)
			delete(s.records, id)
		}
	}
	for k, c := range s.counters {
		if !c.reset.After(now) {
			delete(s.counters, k)
		}
	}
	s.sweepBindingsLocked(now)
}
