// Package faulty wraps a store.Store so tests can make chosen operations
// fail or stall. Code above the store (the device flow, the HTTP handlers)
// must answer server_error, time out cleanly or retry when the database
// misbehaves; this lets a test show that without a broken database.
//
// It is for tests only: nothing in the serving path should import it.
// With no fault set it is a transparent pass-through, and it passes the
// storetest conformance suite as such.
package faulty

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Op names one store.Store operation that faults can target. Close is not
// one: tests need it to work to clean up.
type Op int

const (
	OpCreate Op = iota
	OpGet
	OpGetByUserCode
	OpUpdate
	OpDelete
	OpPing
	OpPutBinding
	OpGetBinding
	OpMoveBinding
	OpDeleteBinding
	OpEachBinding
	// OpIncr is store.Counter's Incr, when the inner store has one.
	OpIncr
	// OpIncrMember is store.Counter's IncrMember, likewise.
	OpIncrMember
	numOps
)

// Ops lists every Op, for table-driven tests.
var Ops = []Op{OpCreate, OpGet, OpGetByUserCode, OpUpdate, OpDelete, OpPing,
	OpPutBinding, OpGetBinding, OpMoveBinding, OpDeleteBinding, OpEachBinding, OpIncr, OpIncrMember}

var opNames = [numOps]string{"Create", "Get", "GetByUserCode", "Update", "Delete", "Ping",
	"PutBinding", "GetBinding", "MoveBinding", "DeleteBinding", "EachBinding", "Incr", "IncrMember"}

// String returns the method name the Op stands for.
func (op Op) String() string {
	if op < 0 || op >= numOps {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return opNames[op]
}

// Store is a store.Store that delegates to an inner one unless a fault is
// set. It is safe for concurrent use, including setting faults while calls
// are in flight.
type Store struct {
	inner store.Store

	mu     sync.Mutex
	next   [numOps][]error // one-shot faults, consumed in order
	always [numOps]error
	delay  [numOps]time.Duration
	calls  [numOps]int
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.Counter      = (*Store)(nil)
	_ store.KnownUpdater = (*Store)(nil)
)

// errNoCounter answers Incr when the inner store keeps no counts.
var errNoCounter = errors.New("faulty: the inner store is not a store.Counter")

// Wrap returns a pass-through wrapper around inner.
func Wrap(inner store.Store) *Store { return &Store{inner: inner} }

// FailNext makes the next call of op return err without reaching the inner
// store. Calling it again queues another failure behind the first, so
// FailNext twice fails the next two calls. A nil err is ignored.
func (s *Store) FailNext(op Op, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op = s.index(op)
	if err != nil {
		s.next[op] = append(s.next[op], err)
	}
}

// FailAlways makes every call of op return err until Reset, or until
// FailAlways(op, nil). Queued FailNext errors are used up first.
func (s *Store) FailAlways(op Op, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.always[s.index(op)] = err
}

// Delay makes every call of op wait d before doing anything else, or
// return ctx.Err() if ctx ends first — the shape of a slow database under
// a request deadline. A d of zero or less removes the delay.
func (s *Store) Delay(op Op, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay[s.index(op)] = max(d, 0)
}

// Reset removes every fault and delay. Call counts are observations, not
// faults, and are kept.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = [numOps][]error{}
	s.always = [numOps]error{}
	s.delay = [numOps]time.Duration{}
}

// Calls returns how many times op was called, whether it failed or not.
func (s *Store) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[s.index(op)]
}

// index checks op, so a bad Op in a test is a clear failure rather than an
// index out of range deep in a call.
func (s *Store) index(op Op) Op {
	if op < 0 || op >= numOps {
		panic(fmt.Sprintf("faulty: unknown %v", op))
	}
	return op
}

// enter counts the call, waits out any delay, and returns the fault to
// answer with, if any. The fault is chosen after the delay so that a fault
// set while a call is stalled applies to it, as with a real slow failure.
func (s *Store) enter(ctx context.Context, op Op) error {
	s.mu.Lock()
	s.calls[op]++
	d := s.delay[op]
	s.mu.Unlock()

	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.next[op]; len(q) > 0 {
		err := q[0]
		s.next[op] = q[1:]
		return err
	}
	return s.always[op]
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	if err := s.enter(ctx, OpCreate); err != nil {
		return err
	}
	return s.inner.Create(ctx, r)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	if err := s.enter(ctx, OpGet); err != nil {
		return nil, err
	}
	return s.inner.Get(ctx, id)
}

// GetByUserCode implements store.Store.
func (s *Store) GetByUserCode(ctx context.Context, userCodeHash string) (*store.Record, error) {
	if err := s.enter(ctx, OpGetByUserCode); err != nil {
		return nil, err
	}
	return s.inner.GetByUserCode(ctx, userCodeHash)
}

// Update implements store.Store. A fault answers before fn runs, like a
// database that refused the read.
func (s *Store) Update(ctx context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
	if err := s.enter(ctx, OpUpdate); err != nil {
		return nil, err
	}
	return s.inner.Update(ctx, id, fn)
}

// UpdateKnown implements store.KnownUpdater, faulted as Update is, and
// passes on to the inner store's (store.UpdateKnown), so a wrapped Cosmos
// store still spares the read.
func (s *Store) UpdateKnown(ctx context.Context, known *store.Record, fn func(*store.Record) error) (*store.Record, error) {
	if err := s.enter(ctx, OpUpdate); err != nil {
		return nil, err
	}
	return store.UpdateKnown(ctx, s.inner, known, fn)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.enter(ctx, OpDelete); err != nil {
		return err
	}
	return s.inner.Delete(ctx, id)
}

// EachBinding implements store.Bindings.
func (s *Store) EachBinding(ctx context.Context, fn func(*store.Binding) error) error {
	if err := s.enter(ctx, OpEachBinding); err != nil {
		return err
	}
	return s.inner.EachBinding(ctx, fn)
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx, OpPing); err != nil {
		return err
	}
	return s.inner.Ping(ctx)
}

// PutBinding implements store.Bindings.
func (s *Store) PutBinding(ctx context.Context, b *store.Binding) error {
	if err := s.enter(ctx, OpPutBinding); err != nil {
		return err
	}
	return s.inner.PutBinding(ctx, b)
}

// GetBinding implements store.Bindings.
func (s *Store) GetBinding(ctx context.Context, id string) (*store.Binding, error) {
	if err := s.enter(ctx, OpGetBinding); err != nil {
		return nil, err
	}
	return s.inner.GetBinding(ctx, id)
}

// MoveBinding implements store.Bindings.
func (s *Store) MoveBinding(ctx context.Context, oldID string, b *store.Binding) error {
	if err := s.enter(ctx, OpMoveBinding); err != nil {
		return err
	}
	return s.inner.MoveBinding(ctx, oldID, b)
}

// DeleteBinding implements store.Bindings.
func (s *Store) DeleteBinding(ctx context.Context, id string) error {
	if err := s.enter(ctx, OpDeleteBinding); err != nil {
		return err
	}
	return s.inner.DeleteBinding(ctx, id)
}

// Incr implements store.Counter by passing on to the inner store's, so
// tests can make rate-limit counting fail.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	if err := s.enter(ctx, OpIncr); err != nil {
		return 0, time.Time{}, err
	}
	c, ok := s.inner.(store.Counter)
	if !ok {
		return 0, time.Time{}, errNoCounter
	}
	return c.Incr(ctx, key, window)
}

// IncrMember implements store.Counter by passing on to the inner store's.
func (s *Store) IncrMember(ctx context.Context, group, member string, window time.Duration) (map[string]int, time.Time, error) {
	if err := s.enter(ctx, OpIncrMember); err != nil {
		return nil, time.Time{}, err
	}
	c, ok := s.inner.(store.Counter)
	if !ok {
		return nil, time.Time{}, errNoCounter
	}
	return c.IncrMember(ctx, group, member, window)
}

// Close implements store.Store; it is never faulted.
func (s *Store) Close() error { return s.inner.Close() }
