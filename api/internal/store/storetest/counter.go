package storetest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// NewCounter opens a fresh backend's store.Counter reading the time from now.
type NewCounter func(t *testing.T, now store.Clock) store.Counter

// RunCounter checks a store.Counter: counts per key and window, a fresh
// count in the next window, and no lost increments under concurrency; for
// IncrMember also that every call sees the whole group as it stood right
// after its own increment, which is what lets a rate limit derive a
// network's count from its members' (ratelimit.Limiter.AllowAddr).
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
	t.Run("MembersPerGroupAndWindow", func(t *testing.T) {
		c := NewClock()
		ctr := newCounter(t, c.Now)
		for want := 1; want <= 2; want++ {
			m, reset, err := ctr.IncrMember(ctx, "net:192.0.2.0/24", "1", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || m["1"] != want {
				t.Errorf("counts %v, want {1:%d}", m, want)
			}
			if wantReset := store.WindowStart(c.Now(), time.Minute).Add(time.Minute); !reset.Equal(wantReset) {
				t.Errorf("resetAt %v, want %v", reset, wantReset)
			}
		}
		m, _, err := ctr.IncrMember(ctx, "net:192.0.2.0/24", "7/x~", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 2 || m["1"] != 2 || m["7/x~"] != 1 {
			t.Errorf("a second member: counts %v, want {1:2 7/x~:1}", m)
		}
		if m, _, _ := ctr.IncrMember(ctx, "net:198.51.100.0/24", "1", time.Minute); len(m) != 1 || m["1"] != 1 {
			t.Errorf("another group shares counts: %v", m)
		}
		if m, _, _ := ctr.IncrMember(ctx, "net:192.0.2.0/24", "1", time.Hour); len(m) != 1 || m["1"] != 1 {
			t.Errorf("another window length shares the group: %v", m)
		}
		if n, _, _ := ctr.Incr(ctx, "net:192.0.2.0/24", time.Minute); n != 1 {
			t.Errorf("Incr of the group's name shares its count: %d", n)
		}
		c.Advance(time.Minute)
		if m, _, _ := ctr.IncrMember(ctx, "net:192.0.2.0/24", "7/x~", time.Minute); len(m) != 1 || m["7/x~"] != 1 {
			t.Errorf("the next window starts at %v", m)
		}
	})
	t.Run("ConcurrentMembersSeeTheWholeGroup", func(t *testing.T) {
		c := NewClock()
		ctr := newCounter(t, c.Now)
		const n = 40
		var wg sync.WaitGroup
		seen := make([]bool, n+1)
		var mu sync.Mutex
		for i := range n {
			member := strconv.Itoa(i % 4)
			wg.Go(func() {
				m, _, err := ctr.IncrMember(ctx, "g", member, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				total := 0
				for _, v := range m {
					total += v
				}
				mu.Lock()
				defer mu.Unlock()
				// Each call's answer is the group right after its own
				// increment: the totals are 1…n, each once.
				if total < 1 || total > n || seen[total] || m[member] < 1 {
					t.Errorf("answer %v (total %d) returned twice, out of range or without its member", m, total)
					return
				}
				seen[total] = true
			})
		}
		wg.Wait()
		m, _, _ := ctr.IncrMember(ctx, "g", "0", time.Hour)
		if m["0"] != n/4+1 || m["1"] != n/4 || m["2"] != n/4 || m["3"] != n/4 {
			t.Errorf("after %d concurrent increments over 4 members the counts are %v (lost updates)", n, m)
		}
	})
}
