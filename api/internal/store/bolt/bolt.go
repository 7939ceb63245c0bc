package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

var (
	// ErrLocked means another process holds the database file. bbolt takes
	// an exclusive file lock, so two devicegate processes cannot share one
	// file; the second one is told so rather than left waiting.
	ErrLocked = errors.New("locked by another devicegate process")
	// ErrUndecodable means a stored value could not be decoded into a
	// record: the file was damaged, or written by an incompatible version.
	// Reads of that record fail with it instead of pretending the record is
	// missing, so the damage is noticed.
	ErrUndecodable = errors.New("store/bolt: stored record is undecodable")
)

const (
	// DefaultSweepEvery is how often the sweeper runs when Options leaves
	// SweepEvery at zero.
	DefaultSweepEvery = time.Minute
	// lockTimeout bounds the wait for the file lock. A devicegate process
	// that is shutting down releases the lock within moments; one that keeps
	// it for a second is running, and waiting longer would only hang startup.
	lockTimeout = time.Second
)

// Bucket names. They are part of the file format: renaming one orphans the
// records of every existing file.
var (
	recordsBucket   = []byte("records")    // ID → envelope JSON
	userCodesBucket = []byte("user_codes") // user-code hash → ID
	countersBucket  = []byte("counters")   // window length|key → counter JSON
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Now is the clock used for expiry and sweeping; time.Now if nil.
	Now store.Clock
	// SweepEvery is how often the background sweeper runs: zero means
	// DefaultSweepEvery, a negative value disables it (tests call Sweep).
	SweepEvery time.Duration
	// Logger receives sweep counts and sweep failures; slog.Default() if
	// nil. It never receives keys.
	Logger *slog.Logger
}

// Store is a store.Store on one bbolt file.
type Store struct {
	db  *bbolt.DB
	now store.Clock
	log *slog.Logger

	stop      chan struct{} // closed by Close to end the sweeper; nil if none
	done      chan struct{} // closed by the sweeper when it has returned
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the database file at path (mode 0600, since the
// records hold sealed tokens and PKCE verifiers) and starts the sweeper.
// If another process holds the file it fails after about a second with an
// error matching ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SweepEvery == 0 {
		opts.SweepEvery = DefaultSweepEvery
	}
	// A fresh install has no data directory yet; create it private, like
	// the file.
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store/bolt: create directory for %s: %w", path, err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	switch {
	case errors.Is(err, bbolt.ErrTimeout):
		return nil, fmt.Errorf("store/bolt: database file %s is %w (waited %s)", path, ErrLocked, lockTimeout)
	case err != nil:
		return nil, fmt.Errorf("store/bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{recordsBucket, userCodesBucket, countersBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store/bolt: prepare %s: %w", path, err)
	}
	// A short batch window: enough to gather the polls that arrive
	// together, short enough not to be felt by a lone request.
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &Store{db: db, now: opts.Now, log: opts.Logger}
	if opts.SweepEvery > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.sweepLoop(opts.SweepEvery)
	}
	return s, nil
}

// Create implements store.Store. Both keys are checked and written in one
// read-write transaction, so two concurrent Creates cannot both take a key.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.ID == "" || r.UserCodeHash == "" {
		return errors.New("store/bolt: record needs an ID and a user code hash")
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		id := []byte(r.ID)
		if recs.Get(id) != nil {
			return store.ErrConflict
		}
		// An index entry whose record is gone is dangling, not a claim on
		// the user code; it is overwritten below.
		if owner := idx.Get([]byte(r.UserCodeHash)); owner != nil && recs.Get(owner) != nil {
			return store.ErrConflict
		}
		_, err = put(recs, idx, r)
		return err
	})
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *store.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		recs, _, err := buckets(tx)
		if err != nil {
			return err
		}
		out, err = s.live(recs, []byte(id))
		return err
	})
	return out, err
}

// GetByUserCode implements store.Store.
func (s *Store) GetByUserCode(ctx context.Context, userCodeHash string) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *store.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		owner := idx.Get([]byte(userCodeHash))
		if owner == nil {
			return store.ErrNotFound
		}
		r, err := s.live(recs, owner)
		if err != nil {
			return err
		}
		// Keys never change, so a mismatch means a stale entry: the
		// user code has no record.
		if r.UserCodeHash != userCodeHash {
			return store.ErrNotFound
		}
		out = r
		return nil
	})
	return out, err
}

// Update implements store.Store. fn runs inside bbolt's single read-write
// transaction, so no other write can come between the read and the write
// and fn runs once per call here (callers must not rely on that). For the
// same reason fn must not call the store: a nested write would deadlock.
func (s *Store) Update(ctx context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *store.Record
	// Batch, not Update: concurrent updates (every pending poll writes)
	// share one transaction and one fsync instead of queueing for one
	// each. Batch may run this function more than once, which the
	// store.Store contract already allows for fn.
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		cur, err := s.live(recs, []byte(id))
		if err != nil {
			return err
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			// Returned as is, so the caller can match it; bbolt rolls
			// the transaction back.
			return err
		}
		next.ID, next.UserCodeHash = cur.ID, cur.UserCodeHash
		if next.Version, err = put(recs, idx, next); err != nil {
			return err
		}
		out = next.Clone()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete implements store.Store. It also removes a record it cannot decode,
// so an operator can clear a damaged entry.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		return remove(recs, idx, []byte(id))
	})
}

// Ping implements store.Store: it fails once the store is closed or the
// file lacks its buckets.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		_, _, err := buckets(tx)
		return err
	})
}

// Close implements store.Store. It stops the sweeper, waiting for a sweep
// in progress, then closes the file and releases its lock. Calling it again
// returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Sweep deletes records whose ExpiresAt is more than store.Retention in
// the past, with their user-code entries, and returns how many it deleted.
// Until then reads answer ErrExpired, so a late poll gets expired_token.
//
// Records it cannot decode are kept and counted in a warning: they may be
// live records of a newer devicegate, and deleting them is the operator's
// call (Delete removes them).
//
// The whole sweep is one write transaction, so it is atomic with respect
// to Create's key checks; a local store is small enough that the pause for
// other writers is short.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cutoff := s.now().Add(-store.Retention)
	var removed, undecodable int
	err := s.db.Update(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		// Collect first: bbolt does not allow changing a bucket while
		// ForEach walks it.
		var old [][]byte
		err = recs.ForEach(func(k, v []byte) error {
			// A full decode, not just expires_at, so the sweeper and
			// the reads agree on which values are damaged.
			r, err := decode(k, v)
			if err != nil {
				undecodable++
				return nil
			}
			if r.ExpiresAt.Before(cutoff) {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range old {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := remove(recs, idx, id); err != nil {
				return err
			}
		}
		removed = len(old)
		return sweepCounters(tx, s.now())
	})
	if err != nil {
		return 0, fmt.Errorf("store/bolt: sweep: %w", err)
	}
	if removed > 0 {
		s.log.Info("bolt store swept expired records", "removed", removed)
	}
	if undecodable > 0 {
		s.log.Warn("bolt store holds undecodable records; kept", "count", undecodable)
	}
	return removed, nil
}

// counterValue is a rate-limit count in the counters bucket.
type counterValue struct {
	N     int       `json:"n"`
	Reset time.Time `json:"reset"`
}

var _ store.Counter = (*Store)(nil)

// Incr implements store.Counter in one write transaction, which bbolt
// serialises, so no increment is lost.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	now := s.now()
	reset := store.WindowStart(now, window).Add(window)
	k := []byte(window.String() + "|" + key)
	var c counterValue
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(countersBucket)
		if b == nil {
			return errors.New("store/bolt: database file lacks its counters bucket")
		}
		c = counterValue{}
		if v := b.Get(k); v != nil {
			// A damaged count restarts at zero: failing the request over
			// a rate-limit counter would turn a glitch into an outage.
			_ = json.Unmarshal(v, &c)
		}
		if !c.Reset.Equal(reset) {
			c = counterValue{Reset: reset}
		}
		c.N++
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store/bolt: counting: %w", err)
	}
	return c.N, reset, nil
}

// sweepCounters drops counts of windows that have ended.
func sweepCounters(tx *bbolt.Tx, now time.Time) error {
	b := tx.Bucket(countersBucket)
	if b == nil {
		return nil
	}
	var old [][]byte
	_ = b.ForEach(func(k, v []byte) error {
		var c counterValue
		if json.Unmarshal(v, &c) != nil || !c.Reset.After(now) {
			old = append(old, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// sweepLoop runs Sweep every interval until Close.
func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.Sweep(context.Background()); err != nil {
				s.log.Error("bolt store sweep failed", "err", err)
			}
		}
	}
}

// envelope is the stored value. Record.Version is not serialised, so the
// revision lives beside the record; it comes from the records bucket's
// sequence, which bbolt persists, so versions keep rising across restarts.
type envelope struct {
	Rev    uint64        `json:"rev"`
	Record *store.Record `json:"record"`
}

// buckets returns the two buckets, or an error rather than nil buckets if
// the file lacks them.
func buckets(tx *bbolt.Tx) (recs, idx *bbolt.Bucket, err error) {
	recs, idx = tx.Bucket(recordsBucket), tx.Bucket(userCodesBucket)
	if recs == nil || idx == nil {
		return nil, nil, errors.New("store/bolt: database file lacks its buckets")
	}
	return recs, idx, nil
}

// live decodes the record stored under id and applies the expiry contract.
func (s *Store) live(recs *bbolt.Bucket, id []byte) (*store.Record, error) {
	v := recs.Get(id)
	if v == nil {
		return nil, store.ErrNotFound
	}
	r, err := decode(id, v)
	if err != nil {
		return nil, err
	}
	if r.Expired(s.now()) {
		return nil, store.ErrExpired
	}
	return r, nil
}

// put writes r under its ID with a fresh revision, points its user code at
// it and returns the new Version. It leaves r alone: the transaction may
// still roll back.
func put(recs, idx *bbolt.Bucket, r *store.Record) (string, error) {
	rev, err := recs.NextSequence()
	if err != nil {
		return "", err
	}
	v, err := json.Marshal(envelope{Rev: rev, Record: r})
	if err != nil {
		return "", fmt.Errorf("store/bolt: encode record: %w", err)
	}
	if err := recs.Put([]byte(r.ID), v); err != nil {
		return "", err
	}
	if err := idx.Put([]byte(r.UserCodeHash), []byte(r.ID)); err != nil {
		return "", err
	}
	return strconv.FormatUint(rev, 10), nil
}

// remove deletes the record under id and the user-code entry pointing at
// it. When the record cannot be decoded its user code is unknown, so the
// index is searched for entries pointing at id; that is slow but only
// happens for damaged records.
func remove(recs, idx *bbolt.Bucket, id []byte) error {
	v := recs.Get(id)
	if v == nil {
		return nil
	}
	var stale [][]byte
	if r, err := decode(id, v); err == nil {
		if owner := idx.Get([]byte(r.UserCodeHash)); string(owner) == string(id) {
			stale = append(stale, []byte(r.UserCodeHash))
		}
	} else {
		err := idx.ForEach(func(k, owner []byte) error {
			if string(owner) == string(id) {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, k := range stale {
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	return recs.Delete(id)
}

// decode turns a stored value into a record. The error never includes the
// key or the value: both could end up in a log line.
func decode(id, v []byte) (*store.Record, error) {
	var e envelope
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	switch {
	case e.Record == nil:
		return nil, fmt.Errorf("%w: no record in stored value", ErrUndecodable)
	case e.Rev == 0:
		return nil, fmt.Errorf("%w: no revision in stored value", ErrUndecodable)
	case e.Record.ID != string(id):
		return nil, fmt.Errorf("%w: stored ID does not match its key", ErrUndecodable)
	}
	e.Record.Version = strconv.FormatUint(e.Rev, 10)
	return e.Record, nil
}
