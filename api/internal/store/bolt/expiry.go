package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

// The expiry index.
//
// Everything the sweeper removes — records, rate-limit counts, and any
// bucket added later — has an entry in one bucket whose keys sort by the
// time the item may go:
//
//	key   = due (8 bytes, big-endian Unix nanoseconds) | kind (1 byte) | item key
//	value = empty
//
// A sweep walks that bucket from its start up to now, so its cost follows
// what is due, not what is stored: 100k live flows cost it one Seek. It
// works in bounded batches, each its own write transaction, so Creates and
// durable Updates wait at most one batch (sweepBatch entries) for the
// writer lock rather than the whole sweep.
//
// An entry is a hint, never the truth: the sweeper asks the item's kind
// whether the item is still due (a record whose ExpiresAt moved, a counter
// that started a new window, an item already deleted), so a stale entry
// costs one look-up and is dropped. Writers therefore only ever add
// entries; whoever deletes an item may leave its entry behind.
//
// To sweep another bucket, give it a kind below and an entry in
// sweepKinds, and add an entry (addDue) wherever an item's due time is
// set.

// expiryBucket holds the index. Its name is part of the file format.
var expiryBucket = []byte("expiry")

// kind tags an index entry with what it points at. The values are part of
// the file format.
type kind byte

const (
	kindRecord  kind = 'r' // a key of recordsBucket
	kindCounter kind = 'c' // a key of countersBucket
	kindBinding kind = 'b' // a key of bindingsBucket (binding.go)
)

// sweepOutcome is what a kind's drop did with a due entry.
type sweepOutcome int

const (
	// dropped: the item was removed; the entry goes with it.
	dropped sweepOutcome = iota
	// stale: the item is gone or due at another time (which has its own
	// entry); the entry goes.
	stale
	// kept: the item stays and so does its entry, to be looked at again
	// by the next sweep (not yet due to the second, or undecodable).
	kept
)

// sweepKind removes an item of one kind if it is still due at now. due is
// the time its index entry names.
type sweepKind func(s *Store, tx *bbolt.Tx, key []byte, due, now time.Time) (sweepOutcome, error)

var sweepKinds = map[kind]sweepKind{
	kindRecord:  sweepRecord,
	kindCounter: sweepCounter,
	kindBinding: sweepBinding,
}

// The sweep works in slices, each one call of the group commit (group.go)
// like any other write: a Create that arrives while a slice commits goes
// into the next transaction, ahead of the next slice, so no writer waits
// for more than one slice. A slice is bounded twice. By work: it stops
// taking entries once it has spent sweepWork, so its decodes and deletes
// never hold the writer lock long. By pages: each record it removes
// dirties a leaf or two that the commit must write and sync, so the slice
// starts at sweepBatch entries, halves after one that held the writer lock
// longer than sweepHoldHigh and doubles (up to maxSweepBatch) after one
// shorter than sweepHoldLow.
const (
	sweepBatch    = 32
	minSweepBatch = 4
	maxSweepBatch = 256
	sweepWork     = time.Millisecond
	sweepHoldLow  = time.Millisecond
	sweepHoldHigh = 3 * time.Millisecond
)

// expiryFill is the expiry bucket's bbolt FillPercent; see addDue.
const expiryFill = 0.9

// expiryKey is the index key of item key of kind k, due at due.
func expiryKey(due time.Time, k kind, key []byte) []byte {
	b := make([]byte, 9, 9+len(key))
	binary.BigEndian.PutUint64(b, dueNanos(due))
	b[8] = byte(k)
	return append(b, key...)
}

// dueNanos orders due times as unsigned integers; times before 1970 sort
// first (due at once) rather than wrapping around.
func dueNanos(t time.Time) uint64 {
	if n := t.UnixNano(); n > 0 {
		return uint64(n)
	}
	return 0
}

// addDue indexes item key of kind k as due at due.
func addDue(tx *bbolt.Tx, due time.Time, k kind, key []byte) error {
	b := tx.Bucket(expiryBucket)
	if b == nil {
		return errors.New("store/bolt: database file lacks its expiry bucket")
	}
	// Entries arrive mostly in key order (a record is due a fixed time
	// after its creation), so a page that splits is left nearly full, not
	// half full as for random keys: the index takes half the pages.
	b.FillPercent = expiryFill
	return b.Put(expiryKey(due, k, key), nil)
}

// recordDue is when the sweeper may remove a record: store.Retention after
// it expired.
func recordDue(r *store.Record) time.Time { return r.ExpiresAt.Add(store.Retention) }

// sweepStats describes one Sweep.
type sweepStats struct {
	Removed     int             // records removed
	Batches     int             // write transactions
	LongestHold time.Duration   // the longest of them, commit included
	LongestWork time.Duration   // the longest of them before its commit
	Holds       []time.Duration // every batch's hold, in order
}

// Sweep deletes records whose ExpiresAt is more than store.Retention in
// the past, with their user-code entries, rate-limit counts whose window
// has ended and expired refresh-token bindings, and returns how many
// records it deleted. Until then
// reads answer ErrExpired, so a late poll gets expired_token.
//
// It follows the expiry index in batches (see sweepBatch), each its own
// write transaction, so no writer waits for more than one batch. Every batch re-checks what it removes inside its transaction, so
// it stays atomic with respect to Create's key checks.
//
// Records it cannot decode are kept and counted in a warning: they may be
// live records of a newer devicegate, and deleting them is the operator's
// call (Delete removes them).
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Counts made before the sweep are written first (they wait for the
	// next commit, counters.go), so it sees them.
	if s.counts.pending() > 0 {
		if err := s.write(func(*bbolt.Tx) error { return nil }); err != nil {
			return 0, fmt.Errorf("store/bolt: sweep: %w", err)
		}
	}
	now := s.now()
	limit := dueNanos(now)
	var (
		st          sweepStats
		undecodable int
		from        []byte // the next index key to look at
		batch       = sweepBatch
	)
	for {
		if err := ctx.Err(); err != nil {
			return st.Removed, fmt.Errorf("store/bolt: sweep: %w", err)
		}
		// A read transaction first: when nothing is due, as in most
		// sweeps, no write transaction (and no commit with its fsync)
		// holds up the writers at all.
		if due, err := s.anyDue(from, limit); err != nil {
			return st.Removed, fmt.Errorf("store/bolt: sweep: %w", err)
		} else if !due {
			break
		}
		var (
			removedIDs []string
			more       bool
			next       []byte        // where the next slice starts, once this one is committed
			work       time.Duration // the slice's own work, before the commit
			hold       time.Duration // how long its transaction held the writer lock
		)
		err := s.writeTimed(func(tx *bbolt.Tx) error {
			// May run again (group.go): everything it reports is reset.
			start := time.Now() // wall time: this bounds and measures the work, it decides nothing
			removedIDs, more, undecodable, next = removedIDs[:0], false, 0, nil
			exp := tx.Bucket(expiryBucket)
			if exp == nil {
				return errors.New("store/bolt: database file lacks its expiry bucket")
			}
			// Collect first: deleting under a bbolt cursor can skip keys.
			var due [][]byte
			c := exp.Cursor()
			k, _ := c.Seek(from)
			for ; k != nil && len(due) < batch; k, _ = c.Next() {
				if len(k) >= 9 && binary.BigEndian.Uint64(k) > limit {
					break
				}
				due = append(due, bytes.Clone(k))
			}
			more = len(due) == batch
			for i, k := range due {
				if i > 0 && i%8 == 0 && time.Since(start) > sweepWork {
					// Out of time: the rest is the next slice's.
					due, more = due[:i], true
					break
				}
				if len(k) < 9 {
					// Not an entry this package writes: it names
					// nothing, so it goes.
					if err := exp.Delete(k); err != nil {
						return err
					}
					continue
				}
				drop, ok := sweepKinds[kind(k[8])]
				// An entry of a kind this version does not know belongs
				// to a newer devicegate: leave it for that one.
				out := kept
				if ok {
					var err error
					at := time.Unix(0, int64(binary.BigEndian.Uint64(k)))
					if out, err = drop(s, tx, k[9:], at, now); err != nil {
						if !errors.Is(err, ErrUndecodable) {
							return err
						}
						undecodable++
						out = kept
					}
				}
				if out == dropped && kind(k[8]) == kindRecord {
					removedIDs = append(removedIDs, string(k[9:]))
				}
				if out != kept {
					if err := exp.Delete(k); err != nil {
						return err
					}
				}
			}
			if len(due) > 0 {
				next = append(due[len(due)-1], 0) // just after the last one
			}
			work = time.Since(start)
			return nil
		}, &hold)
		if err != nil {
			return st.Removed, fmt.Errorf("store/bolt: sweep: %w", err)
		}
		if next != nil {
			from = next
		}
		st.Batches++
		st.Holds = append(st.Holds, hold)
		st.LongestHold = max(st.LongestHold, hold)
		st.LongestWork = max(st.LongestWork, work)
		switch {
		case hold > sweepHoldHigh:
			batch = max(minSweepBatch, batch/2)
		case hold < sweepHoldLow:
			batch = min(maxSweepBatch, batch*2)
		}
		st.Removed += len(removedIDs)
		s.pace.drop(removedIDs...)
		if s.afterSlice != nil {
			s.afterSlice(len(removedIDs))
		}
		if undecodable > 0 {
			s.log.Warn("bolt store holds undecodable records; kept", "count", undecodable)
		}
		if !more {
			break
		}
	}
	s.noteSweep(st)
	if st.Removed > 0 {
		s.log.Info("bolt store swept expired records", "removed", st.Removed, "batches", st.Batches, "longest_batch", st.LongestHold)
	}
	return st.Removed, nil
}

// anyDue reports whether the expiry index has an entry at or after from
// that is due by limit.
func (s *Store) anyDue(from []byte, limit uint64) (bool, error) {
	var due bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		exp := tx.Bucket(expiryBucket)
		if exp == nil {
			return errors.New("store/bolt: database file lacks its expiry bucket")
		}
		k, _ := exp.Cursor().Seek(from)
		due = k != nil && (len(k) < 9 || binary.BigEndian.Uint64(k) <= limit)
		return nil
	})
	return due, err
}

// sweepRecord removes the record under id if it is past retention at now.
func sweepRecord(s *Store, tx *bbolt.Tx, id []byte, due, now time.Time) (sweepOutcome, error) {
	recs, idx, err := buckets(tx)
	if err != nil {
		return kept, err
	}
	v := recs.Get(id)
	if v == nil {
		return stale, nil
	}
	r, _, err := decode(id, v)
	if err != nil {
		return kept, err
	}
	switch {
	case dueNanos(recordDue(r)) != dueNanos(due):
		return stale, nil // its expiry moved; the entry for the new one stays
	case !r.ExpiresAt.Before(now.Add(-store.Retention)):
		return kept, nil
	}
	return dropped, remove(recs, idx, id)
}

// sweepCounter removes the count under key if its window has ended at now.
// A count that cannot be decoded goes too: it is worth nothing.
func sweepCounter(_ *Store, tx *bbolt.Tx, key []byte, due, now time.Time) (sweepOutcome, error) {
	b := tx.Bucket(countersBucket)
	if b == nil {
		return kept, errors.New("store/bolt: database file lacks its counters bucket")
	}
	v := b.Get(key)
	if v == nil {
		return stale, nil
	}
	var c counterValue
	if json.Unmarshal(v, &c) == nil {
		if dueNanos(c.Reset) != dueNanos(due) {
			return stale, nil // a later window; it has its own entry
		}
		if c.Reset.After(now) {
			return kept, nil
		}
	}
	return dropped, b.Delete(key)
}

// noteSweep keeps the longest writer pause of any sweep since Open.
func (s *Store) noteSweep(st sweepStats) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	s.longestHold = max(s.longestHold, st.LongestHold)
	s.longestWork = max(s.longestWork, st.LongestWork)
	if len(st.Holds) > 0 {
		s.lastHolds = slices.Sorted(slices.Values(st.Holds))
	}
}

// SweepHolds describes the slices of the last sweep that wrote anything:
// how many, and the median and 99th percentile of how long each held
// bbolt's writer lock (nearest rank). Benchmarks read it: on a busy
// machine the longest (SweepPause) is one scheduling or disk hiccup, these
// are what a writer usually waits.
func (s *Store) SweepHolds() (n int, p50, p99 time.Duration) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	h := s.lastHolds
	if len(h) == 0 {
		return 0, 0, 0
	}
	rank := func(q float64) time.Duration { return h[min(len(h)-1, max(0, int(q*float64(len(h))+0.5)-1))] }
	return len(h), rank(0.5), rank(0.99)
}

// SweepPause reports the longest time one sweep transaction held bbolt's
// writer lock since Open — how long a Create or a durable Update could have
// waited for the sweeper. Benchmarks read it.
func (s *Store) SweepPause() time.Duration {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	return s.longestHold
}

// SweepWork is SweepPause without the commit: the longest time one sweep
// transaction spent on its own work. The rest of the pause is bbolt's
// commit — writing the pages and two fsyncs — which any write transaction
// pays, so it says more about the disk than about the sweep.
func (s *Store) SweepWork() time.Duration {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	return s.longestWork
}
