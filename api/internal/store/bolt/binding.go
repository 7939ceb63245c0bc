package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

// bindingSweepBatch bounds how many bindings one sweep transaction visits,
// so that a large bucket never holds other writers up for long: the sweep
// walks the bucket in transactions of this many keys each.
const bindingSweepBatch = 1000

func bindingBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	b := tx.Bucket(bindingsBucket)
	if b == nil {
		return nil, errors.New("store/bolt: database file lacks its bindings bucket")
	}
	return b, nil
}

func putBinding(b *bbolt.Bucket, v *store.Binding) error {
	if v.ID == "" {
		return errors.New("store/bolt: binding needs an ID")
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(v.ID), enc)
}

// PutBinding implements store.Bindings. It is durable when it returns: a
// device holding the refresh token must be able to use it after a crash.
func (s *Store) PutBinding(ctx context.Context, v *store.Binding) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := bindingBucket(tx)
		if err != nil {
			return err
		}
		return putBinding(b, v)
	})
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
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := bindingBucket(tx)
		if err != nil {
			return err
		}
		if err := b.Delete([]byte(oldID)); err != nil {
			return err
		}
		return putBinding(b, v)
	})
}

// DeleteBinding implements store.Bindings.
func (s *Store) DeleteBinding(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := bindingBucket(tx)
		if err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
}

// sweepBindings deletes expired bindings, bindingSweepBatch keys per
// write transaction. An undecodable binding is deleted too: unlike a
// record it holds nothing a device is waiting for, and the only cost is
// that its refresh token must sign in again.
func (s *Store) sweepBindings(ctx context.Context) error {
	now := s.now()
	var after []byte // resume after this key
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		done := false
		err := s.db.Update(func(tx *bbolt.Tx) error {
			b, err := bindingBucket(tx)
			if err != nil {
				return err
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			var expired [][]byte
			for n := 0; n < bindingSweepBatch && k != nil; n++ {
				after = append(after[:0], k...)
				var bd store.Binding
				if json.Unmarshal(v, &bd) != nil || bd.Expired(now) {
					expired = append(expired, append([]byte(nil), k...))
				}
				k, v = c.Next()
			}
			done = k == nil
			// Deleted after the walk: bbolt does not allow changing a
			// bucket while a cursor steps through it.
			for _, k := range expired {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}
