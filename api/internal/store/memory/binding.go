package memory

import (
	"context"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// PutBinding implements store.Bindings.
func (s *Store) PutBinding(_ context.Context, b *store.Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	s.bindings[b.ID] = b.Clone()
	return nil
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
	s.bindings[b.ID] = b.Clone()
	return nil
}

// DeleteBinding implements store.Bindings.
func (s *Store) DeleteBinding(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bindings, id)
	return nil
}

// sweepBindingsLocked drops expired bindings; sweepLocked calls it.
func (s *Store) sweepBindingsLocked(now time.Time) {
	for id, b := range s.bindings {
		if b.Expired(now) {
			delete(s.bindings, id)
		}
	}
}
