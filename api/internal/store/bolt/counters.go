package bolt

import (
	"encoding/json"
	"errors"
	"maps"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// Rate-limit counts ride along with the next commit.
//
// A request counts itself (Incr, IncrMember) before it does its work, and
// on /api/authorize that work is a Create. Committed on its own, each
// count cost the request a commit of its own to wait for before the
// Create's: an authorize waited for two or three commits in a row. bbolt's file lock means one process
// owns the file, so that process's memory is the truth about a count while
// it is not yet in the file: Incr counts there and returns, and the
// committer (group.go) writes every count still pending at the start of
// each transaction it runs. A count no durable write follows gets a
// transaction of its own countDelay later; waking the committer at once
// instead had it commit counts alone just before the Create they were
// counted for, one extra commit per request under load.
//
// So when a request's answer waits for a commit (a Create, a durable
// Update), its counts are in that same commit: what was answered is on
// disk, counts included. A crash loses only counts whose request has not
// had such a commit — those in flight, and those of requests that wrote
// nothing in the last countDelay — which lose nothing they were promised.

// pendingCount is a count not yet known to be in the file.
type pendingCount struct {
	v   counterValue
	gen uint64 // which Incr set it, so a commit only forgets what it wrote
}

// counts holds the pending counts.
type counts struct {
	mu  sync.Mutex
	m   map[string]pendingCount // key as in countersBucket → count
	gen uint64
	// wake tells the committer there is something to write (buffered 1:
	// one wake covers any number of counts).
	wake chan struct{}
}

func newCounts() *counts {
	return &counts{m: make(map[string]pendingCount), wake: make(chan struct{}, 1)}
}

// add applies bump to the count under k (window|key, or window|g|group
// for IncrMember) and returns the count as bump left it; file reads the
// count stored in the file when none is pending. The returned value shares
// nothing with the pending one.
func (c *counts) add(k string, file func() (counterValue, error), bump func(*counterValue)) (counterValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[k]
	if !ok {
		v, err := file()
		if err != nil {
			return counterValue{}, err
		}
		p.v = v
	}
	bump(&p.v)
	c.gen++
	p.gen = c.gen
	c.m[k] = p
	c.again()
	out := p.v
	out.M = maps.Clone(p.v.M)
	return out, nil
}

// written is what one transaction wrote: key → the gen it wrote.
type written map[string]uint64

// write puts every pending count into tx and returns what it wrote; a new
// window gets its expiry index entry, as a Put of it always has.
func (c *counts) write(tx *bbolt.Tx) (written, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return nil, nil
	}
	b := tx.Bucket(countersBucket)
	if b == nil {
		return nil, errors.New("store/bolt: database file lacks its counters bucket")
	}
	w := make(written, len(c.m))
	for k, p := range c.m {
		key := []byte(k)
		var old counterValue
		if v := b.Get(key); v != nil {
			_ = json.Unmarshal(v, &old)
		}
		if !old.Reset.Equal(p.v.Reset) {
			// A new window: the sweeper may drop the count when it ends.
			if err := addDue(tx, p.v.Reset, kindCounter, key); err != nil {
				return nil, err
			}
		}
		v, err := json.Marshal(p.v)
		if err != nil {
			return nil, err
		}
		if err := b.Put(key, v); err != nil {
			return nil, err
		}
		w[k] = p.gen
	}
	return w, nil
}

// committed forgets the counts w wrote, once they are on disk, unless an
// Incr has changed them since.
func (c *counts) committed(w written) {
	if len(w) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, gen := range w {
		if p, ok := c.m[k]; ok && p.gen == gen {
			delete(c.m, k)
		}
	}
}

// pending reports how many counts wait for a commit.
func (c *counts) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// again wakes the committer to try the pending counts once more, after a
// transaction that held them rolled back for another write's fault.
func (c *counts) again() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
