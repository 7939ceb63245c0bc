package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// NewCounter opens a fresh backend's store.Counter reading the time from now.
type NewCounter func(t *testing.T, now store.Clock) store.Counter

// RunCounter checks a store.Counter: counts per key and window, a fresh
// count in the next window, and no lost increments under concurrency.
func RunCounter(t *testing.T, newCounter NewCounter) {
	ctx := context.Background()
	t.Run("CountsPerKeyAndWindow", func(t *testing.T) {
		c := NewClock()
		ctr := newCounter(t, c.Now)
		for want := 1; want <= 3; want++ {
			n, reset, err := ctr.Incr(ctx, "ip:192.0.2.1", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Errorf("count %d, want %d", n, want)
			}
			if wantReset := store.WindowStart(c.Now(), time.Minute).Add(time.Minute); !reset.Equal(wantReset) {
				t.Errorf("resetAt %v, want %v", reset, wantReset)
			}
		}
		if n, _, _ := ctr.Incr(ctx, "ip:192.0.2.2", time.Minute); n != 1 {
			t.Errorf("another key starts at %d", n)
		}
		if n, _, _ := ctr.Incr(ctx, "ip:192.0.2.1", time.Hour); n != 1 {
			t.Errorf("another window length shares the count: %d", n)
		}
		c.Advance(time.Minute)
		if n, _, _ := ctr.Incr(ctx, "ip:192.0.2.1", time.Minute); n != 1 {
			t.Errorf("the next window starts at %d", n)
		}
	})
	t.Run("ConcurrentIncrementsAllCount", func(t *testing.T) {
		c := NewClock()
		ctr := newCounter(t, c.Now)
		const n = 40
		var wg sync.WaitGroup
		seen := make([]bool, n+1)
		var mu sync.Mutex
		for range n {
			wg.Go(func() {
				got, _, err := ctr.Incr(ctx, "k", time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if got < 1 || got > n || seen[got] {
					t.Errorf("count %d returned twice or out of range", got)
					return
				}
				seen[got] = true
			})
		}
		wg.Wait()
		if got, _, _ := ctr.Incr(ctx, "k", time.Hour); got != n+1 {
			t.Errorf("after %d concurrent increments the count is %d (lost updates)", n, got-1)
		}
	})
}
