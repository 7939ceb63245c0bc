package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

func bindingBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	b := tx.Bucket(bindingsBucket)
	if b == nil {
		return nil, errors.New("store/bolt: database file lacks its bindings bucket")
	}
	return b, nil
}

// putBinding writes v and indexes its expiry for the sweeper (expiry.go);
// the entry of a binding it renews goes stale and is dropped by the sweep.
func putBinding(tx *bbolt.Tx, b *bbolt.Bucket, v *store.Binding) error {
	if v.ID == "" {
		return errors.New("store/bolt: binding needs an ID")
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(v.ID), enc); err != nil {
		return err
	}
	return addDue(tx, v.ExpiresAt, kindBinding, []byte(v.ID))
}

// writeBindings runs fn on the bindings bucket in a group-committed write
// transaction (see group.go): durable when it returns, since a device
// holding the refresh token must be able to use it after a crash.
func (s *Store) writeBindings(ctx context.Context, fn func(tx *bbolt.Tx, b *bbolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.write(func(tx *bbolt.Tx) error {
		b, err := bindingBucket(tx)
		if err != nil {
			return err
		}
		return fn(tx, b)
	})
}

// PutBinding implements store.Bindings.
func (s *Store) PutBinding(ctx context.Context, v *store.Binding) error {
	return s.writeBindings(ctx, func(tx *bbolt.Tx, b *bbolt.Bucket) error { return putBinding(tx, b, v) })
}

// GetBinding implements store.Bindings.
func (s *Store) GetBinding(ctx context.Context, id string) (*store.Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *store.Binding
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := bindingBucket(tx)
		if err != nil {
			return err
		}
		v := b.Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		out = &store.Binding{}
		if err := json.Unmarshal(v, out); err != nil || out.ID != id {
			return fmt.Errorf("store/bolt: stored binding is undecodable")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out.Expired(s.now()) {
		return nil, store.ErrNotFound
	}
	return out, nil
}

// MoveBinding implements store.Bindings in one transaction.
func (s *Store) MoveBinding(ctx context.Context, oldID string, v *store.Binding) error {
	return s.writeBindings(ctx, func(tx *bbolt.Tx, b *bbolt.Bucket) error {
		if err := b.Delete([]byte(oldID)); err != nil {
			return err
		}
		return putBinding(tx, b, v)
	})
}

// DeleteBinding implements store.Bindings.
func (s *Store) DeleteBinding(ctx context.Context, id string) error {
	return s.writeBindings(ctx, func(_ *bbolt.Tx, b *bbolt.Bucket) error { return b.Delete([]byte(id)) })
}

// sweepBinding removes the binding under id if it has expired at now. An
// undecodable binding goes too: unlike a record it holds nothing a device
// is waiting for, and the only cost is that its refresh token must sign in
// again.
func sweepBinding(_ *Store, tx *bbolt.Tx, id []byte, due, now time.Time) (sweepOutcome, error) {
	b, err := bindingBucket(tx)
	if err != nil {
		return kept, err
	}
	v := b.Get(id)
	if v == nil {
		return stale, nil
	}
	var bd store.Binding
	if json.Unmarshal(v, &bd) == nil {
		if dueNanos(bd.ExpiresAt) != dueNanos(due) {
			return stale, nil // renewed; the entry for the new expiry stays
		}
		if !bd.Expired(now) {
			return kept, nil
		}
	}
	return dropped, b.Delete(id)
}

// EachBinding implements store.Bindings. It decodes the live bindings in
// one read transaction and calls fn after it ends, so fn may write.
// An undecodable binding is skipped (the sweep drops it).
func (s *Store) EachBinding(ctx context.Context, fn func(*store.Binding) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.now()
	var live []*store.Binding
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := bindingBucket(tx)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			bd := &store.Binding{}
			if json.Unmarshal(v, bd) != nil || bd.ID != string(k) || bd.Expired(now) {
				return nil
			}
			live = append(live, bd)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, bd := range live {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(bd); err != nil {
			return err
		}
	}
	return nil
}
