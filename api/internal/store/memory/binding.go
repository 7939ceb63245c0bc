package memory

import (
	"container/heap"
	"context"

	"github.com/devicegate/devicegate/api/internal/store"
)

// PutBinding implements store.Bindings.
func (s *Store) PutBinding(_ context.Context, b *store.Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	s.putBindingLocked(b)
	return nil
}

// putBindingLocked stores a copy of b and schedules its sweep.
func (s *Store) putBindingLocked(b *store.Binding) {
	s.bindings[b.ID] = b.Clone()
	heap.Push(&s.due, dueItem{at: b.ExpiresAt, key: b.ID, kind: dueBinding})
}

// GetBinding implements store.Bindings.
func (s *Store) GetBinding(_ context.Context, id string) (*store.Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bindings[id]
	if !ok || b.Expired(s.now()) {
		return nil, store.ErrNotFound
	}
	return b.Clone(), nil
}

// MoveBinding implements store.Bindings; under the one lock it is atomic.
func (s *Store) MoveBinding(_ context.Context, oldID string, b *store.Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bindings, oldID)
	s.putBindingLocked(b)
	return nil
}

// DeleteBinding implements store.Bindings.
func (s *Store) DeleteBinding(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bindings, id)
	return nil
}

// EachBinding implements store.Bindings. It copies the live bindings under
// the lock and calls fn after releasing it, so fn may use the store.
func (s *Store) EachBinding(ctx context.Context, fn func(*store.Binding) error) error {
	s.mu.Lock()
	now := s.now()
	live := make([]*store.Binding, 0, len(s.bindings))
	for _, b := range s.bindings {
		if !b.Expired(now) {
			live = append(live, b.Clone())
		}
	}
	s.mu.Unlock()
	for _, b := range live {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}
