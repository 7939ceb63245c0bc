package faulty_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/faulty"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(_ *testing.T, now store.Clock) store.Store {
		return faulty.Wrap(memory.New(now))
	})
}

var (
	boom  = errors.New("boom")
	boom2 = errors.New("boom again")
)

// fixture is a wrapped memory store holding one live record, put there
// behind the wrapper's back so it is not counted.
type fixture struct {
	s     *faulty.Store
	inner *memory.Store
	rec   *store.Record
	n     atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	inner := memory.New(nil)
	f := &fixture{inner: inner, s: faulty.Wrap(inner)}
	f.rec = f.record()
	if err := inner.Create(context.Background(), f.rec); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) record() *store.Record {
	n := f.n.Add(1)
	return &store.Record{
		ID:           fmt.Sprintf("dev-%d", n),
		UserCodeHash: fmt.Sprintf("usr-%d", n),
		Status:       store.StatusPending,
		ExpiresAt:    time.Now().Add(time.Hour),
	}
}

// call runs op in a way that succeeds every time when no fault is set.
func (f *fixture) call(ctx context.Context, op faulty.Op) error {
	var err error
	switch op {
	case faulty.OpCreate:
		err = f.s.Create(ctx, f.record())
	case faulty.OpGet:
		_, err = f.s.Get(ctx, f.rec.ID)
	case faulty.OpGetByUserCode:
		_, err = f.s.GetByUserCode(ctx, f.rec.UserCodeHash)
	case faulty.OpUpdate:
		_, err = f.s.Update(ctx, f.rec.ID, func(r *store.Record) error { r.Interval++; return nil })
	case faulty.OpDelete:
		err = f.s.Delete(ctx, "no-such-record")
	case faulty.OpPing:
		err = f.s.Ping(ctx)
	case faulty.OpPutBinding:
		err = f.s.PutBinding(ctx, &store.Binding{ID: "rt-1", ClientID: "tv", ExpiresAt: time.Now().Add(time.Hour)})
	case faulty.OpGetBinding:
		if err = f.inner.PutBinding(ctx, &store.Binding{ID: "rt-get", ClientID: "tv", ExpiresAt: time.Now().Add(time.Hour)}); err == nil {
			_, err = f.s.GetBinding(ctx, "rt-get")
		}
	case faulty.OpMoveBinding:
		err = f.s.MoveBinding(ctx, "rt-old", &store.Binding{ID: "rt-new", ClientID: "tv", ExpiresAt: time.Now().Add(time.Hour)})
	case faulty.OpDeleteBinding:
		err = f.s.DeleteBinding(ctx, "no-such-binding")
	case faulty.OpEachBinding:
		err = f.s.EachBinding(ctx, func(*store.Binding) error { return nil })
	case faulty.OpIncr:
		_, _, err = f.s.Incr(ctx, "k", time.Minute)
	case faulty.OpIncrMember:
		_, _, err = f.s.IncrMember(ctx, "g", "m", time.Minute)
	default:
		panic(op)
	}
	return err
}

func TestFailNext(t *testing.T) {
	ctx := context.Background()
	for _, op := range faulty.Ops {
		t.Run(op.String(), func(t *testing.T) {
			f := newFixture(t)
			f.s.FailNext(op, boom)
			// Other operations are untouched.
			for _, other := range faulty.Ops {
				if other != op {
					if err := f.call(ctx, other); err != nil {
						t.Errorf("%v while %v is set to fail: %v", other, op, err)
					}
				}
			}
			if err := f.call(ctx, op); !errors.Is(err, boom) {
				t.Errorf("first call: got %v, want boom", err)
			}
			if err := f.call(ctx, op); err != nil {
				t.Errorf("second call: %v, want the fault used up", err)
			}
			if n := f.s.Calls(op); n != 2 {
				t.Errorf("Calls = %d, want 2", n)
			}
		})
	}
}

func TestFailNextQueues(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.s.FailNext(faulty.OpGet, boom)
	f.s.FailNext(faulty.OpGet, nil) // ignored
	f.s.FailNext(faulty.OpGet, boom2)
	for i, want := range []error{boom, boom2, nil, nil} {
		if err := f.call(ctx, faulty.OpGet); !errors.Is(err, want) {
			t.Errorf("call %d: got %v, want %v", i+1, err, want)
		}
	}
}

func TestFailAlways(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		clear func(s *faulty.Store, op faulty.Op)
	}{
		{"Reset", func(s *faulty.Store, _ faulty.Op) { s.Reset() }},
		{"FailAlways nil", func(s *faulty.Store, op faulty.Op) { s.FailAlways(op, nil) }},
	}
	for _, tc := range tests {
		for _, op := range faulty.Ops {
			t.Run(tc.name+"/"+op.String(), func(t *testing.T) {
				f := newFixture(t)
				f.s.FailAlways(op, boom)
				f.s.FailNext(op, boom2)
				if err := f.call(ctx, op); !errors.Is(err, boom2) {
					t.Errorf("a queued FailNext goes first: got %v", err)
				}
				for i := range 3 {
					if err := f.call(ctx, op); !errors.Is(err, boom) {
						t.Errorf("call %d: got %v, want boom", i+1, err)
					}
				}
				tc.clear(f.s, op)
				if err := f.call(ctx, op); err != nil {
					t.Errorf("after clearing: %v", err)
				}
				if n := f.s.Calls(op); n != 5 {
					t.Errorf("Calls = %d, want 5", n)
				}
			})
		}
	}
}

// A fault answers before the inner store is reached, so a failed write
// leaves nothing behind and Update never runs fn.
func TestFaultDoesNotReachInner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, op := range faulty.Ops {
		f.s.FailAlways(op, boom)
	}

	r := f.record()
	if err := f.s.Create(ctx, r); !errors.Is(err, boom) {
		t.Fatalf("Create: %v", err)
	}
	if _, err := f.inner.Get(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed Create stored the record: %v", err)
	}
	if _, err := f.s.Update(ctx, f.rec.ID, func(*store.Record) error {
		t.Error("a failed Update ran fn")
		return nil
	}); !errors.Is(err, boom) {
		t.Errorf("Update: %v", err)
	}
	if err := f.s.Delete(ctx, f.rec.ID); !errors.Is(err, boom) {
		t.Errorf("Delete: %v", err)
	}
	if _, err := f.inner.Get(ctx, f.rec.ID); err != nil {
		t.Errorf("a failed Delete removed the record: %v", err)
	}
	// Close is never faulted.
	if err := f.s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestDelay(t *testing.T) {
	// Wall-clock bounds are only lower bounds (a delay never ends early) and
	// loose guards: on a loaded machine a goroutine can be scheduled late, so
	// "gives up at the deadline" is proven by an hour-long delay that the
	// call does not wait out, not by a tight upper bound.
	tests := []struct {
		name    string
		delay   time.Duration
		timeout time.Duration // 0: no deadline
		wantErr error
		minWait time.Duration
	}{
		{"waits then succeeds", 200 * time.Millisecond, 0, nil, 200 * time.Millisecond},
		{"gives up at the deadline", time.Hour, 20 * time.Millisecond, context.DeadlineExceeded, 20 * time.Millisecond},
	}
	const guard = 30 * time.Second
	for _, tc := range tests {
		for _, op := range faulty.Ops {
			t.Run(tc.name+"/"+op.String(), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				f.s.Delay(op, tc.delay)
				start := time.Now() // before the deadline is set, so took >= timeout
				ctx, cancel := context.WithTimeout(context.Background(), guard)
				defer cancel()
				if tc.timeout > 0 {
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				err := f.call(ctx, op)
				took := time.Since(start)
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("got %v, want %v", err, tc.wantErr)
				}
				if took < tc.minWait || took >= guard {
					t.Errorf("took %s, want at least %s (and less than the %s guard)", took, tc.minWait, guard)
				}
				if n := f.s.Calls(op); n != 1 {
					t.Errorf("Calls = %d, want 1", n)
				}
			})
		}
	}
}

func TestDelayCleared(t *testing.T) {
	tests := []struct {
		name  string
		clear func(s *faulty.Store)
	}{
		{"Reset", func(s *faulty.Store) { s.Reset() }},
		{"zero delay", func(s *faulty.Store) { s.Delay(faulty.OpGet, 0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.s.Delay(faulty.OpGet, time.Hour)
			tc.clear(f.s)
			// An uncleared hour-long delay ends with this guard's deadline;
			// a cleared one answers at once, however loaded the machine.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := f.call(ctx, faulty.OpGet); err != nil {
				t.Errorf("Get after clearing the delay: %v", err)
			}
		})
	}
}

// Faults set from one goroutine are each used exactly once by calls from
// many others; the race detector checks the locking.
func TestConcurrentFailNext(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const faults, workers, perWorker = 40, 8, 25
	var failed atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		for range faults {
			f.s.FailNext(faulty.OpGet, boom)
		}
	})
	for range workers {
		wg.Go(func() {
			for range perWorker {
				switch err := f.call(ctx, faulty.OpGet); {
				case errors.Is(err, boom):
					failed.Add(1)
				case err != nil:
					t.Errorf("Get: %v", err)
				}
				_ = f.s.Calls(faulty.OpGet)
			}
		})
	}
	wg.Wait()
	// Faults queued after the last call are still waiting; use them up.
	drained := 0
	for f.call(ctx, faulty.OpGet) != nil {
		drained++
	}
	if n := int(failed.Load()) + drained; n != faults {
		t.Errorf("%d calls failed, want %d", n, faults)
	}
	if n, want := f.s.Calls(faulty.OpGet), workers*perWorker+drained+1; n != want {
		t.Errorf("Calls = %d, want %d", n, want)
	}
}

func TestOpString(t *testing.T) {
	tests := []struct {
		op   faulty.Op
		want string
	}{
		{faulty.OpCreate, "Create"},
		{faulty.OpGet, "Get"},
		{faulty.OpGetByUserCode, "GetByUserCode"},
		{faulty.OpUpdate, "Update"},
		{faulty.OpDelete, "Delete"},
		{faulty.OpPing, "Ping"},
		{faulty.Op(99), "Op(99)"},
	}
	for _, tc := range tests {
		if got := tc.op.String(); got != tc.want {
			t.Errorf("Op(%d).String() = %q, want %q", int(tc.op), got, tc.want)
		}
	}
}
