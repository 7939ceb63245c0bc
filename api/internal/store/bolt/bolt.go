package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
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
	bindingsBucket  = []byte("bindings")   // refresh-token hash → binding JSON (binding.go)
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
	db   *bbolt.DB
	now  store.Clock
	log  *slog.Logger
	pace *pacer // poll pacing kept in memory; see pacing.go

	stop      chan struct{} // closed by Close to end the sweeper; nil if none
	done      chan struct{} // closed by the sweeper when it has returned
	closeOnce sync.Once
	closeErr  error

	group  *committer // group commit of durable writes; see group.go
	counts *counts    // rate-limit counts waiting for the next commit; see counters.go

	commits, grouped atomic.Uint64 // for CommitStats (group.go)
	timing           commitTiming  // the same

	afterSlice func(removed int) // tests only: called after each committed sweep slice

	sweepMu     sync.Mutex
	longestHold time.Duration   // the longest sweep transaction since Open
	longestWork time.Duration   // the same before its commit
	lastHolds   []time.Duration // the last writing sweep's holds, sorted
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
	// NoFreelistSync: the free-page list is rebuilt from the file at Open
	// instead of being written with every commit, so a commit (and the
	// group-committed Creates waiting on it) writes fewer pages. etcd runs
	// bbolt the same way. Files written either way open either way.
	// The default (array) freelist: the map type was tried and wrote as
	// many pages and spent more CPU per Create while the file grew
	// (bench part 1d, interleaved), so it stays.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout, NoFreelistSync: true})
	switch {
	case errors.Is(err, bbolt.ErrTimeout):
		return nil, fmt.Errorf("store/bolt: database file %s is %w (waited %s)", path, ErrLocked, lockTimeout)
	case err != nil:
		return nil, fmt.Errorf("store/bolt: open %s: %w", path, err)
	}
	var m *migrated
	err = db.Update(func(tx *bbolt.Tx) (err error) {
		m, err = prepare(tx)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store/bolt: prepare %s: %w", path, err)
	}
	if m != nil {
		opts.Logger.Info("bolt store file migrated", "from_format", m.From, "to_format", formatVersion,
			"records", m.Records, "counters", m.Counters, "bindings", m.Bindings, "undecodable", m.Undecodable)
	}
	s := &Store{db: db, now: opts.Now, log: opts.Logger, pace: newPacer(time.Now()), counts: newCounts()}
	s.startCommitter()
	if opts.SweepEvery > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.sweepLoop(opts.SweepEvery)
	}
	return s, nil
}

// Create implements store.Store. Both keys are checked and written in one
// read-write transaction, so two concurrent Creates cannot both take a key.
//
// Creates that arrive together share that transaction and its fsync (group
// commit, group.go): each returns only once the transaction holding it is
// on disk, so an answered authorize survives a crash. A Create refused
// with ErrConflict writes nothing and leaves the rest of its group alone.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.ID == "" || r.UserCodeHash == "" {
		return errors.New("store/bolt: record needs an ID and a user code hash")
	}
	return s.write(func(tx *bbolt.Tx) error {
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
		_, err = put(tx, recs, idx, r, nil)
		return err
	})
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, _, err := s.read(id, byID)
	return r, err
}

// GetByUserCode implements store.Store.
func (s *Store) GetByUserCode(ctx context.Context, userCodeHash string) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, _, err := s.read(userCodeHash, byUserCode)
	return r, err
}

// lookup says what read's key is.
type lookup bool

const (
	byID       lookup = false
	byUserCode lookup = true
)

// read returns the live record under key, with its pacing laid over, and
// its stored revision, in one read transaction.
func (s *Store) read(key string, by lookup) (*store.Record, uint64, error) {
	var (
		r   *store.Record
		rev uint64
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		id := []byte(key)
		if by == byUserCode {
			if id = idx.Get(id); id == nil {
				return store.ErrNotFound
			}
		}
		if r, rev, err = s.live(recs, id); err != nil {
			return err
		}
		// Keys never change, so a mismatch means a stale index entry:
		// the user code has no record.
		if by == byUserCode && r.UserCodeHash != key {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	s.pace.apply(r, rev)
	return r, rev, nil
}

// Update implements store.Store. Updates of one record are serialised in
// this process (bbolt's file lock keeps other processes out), so the read
// and the write cannot be separated by another write, and fn must not call
// the store: a nested update of the same record would deadlock.
//
// When fn changes nothing but LastPoll and Interval — a pending or
// too-early poll — the figures are kept in memory and nothing is written to
// the file (see pacing.go). Any other change is written, in a batched
// transaction, together with the pacing figures.
func (s *Store) Update(ctx context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer s.pace.lock(id)()

	cur, rev, err := s.read(id, byID)
	if err != nil {
		return nil, err
	}
	next := cur.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	next.ID, next.UserCodeHash = cur.ID, cur.UserCodeHash
	if store.PacingOnly(cur, next) {
		// set copies the figures; next is nobody's but the caller's.
		s.pace.set(next, rev)
		return next, nil
	}

	// Group-committed (group.go): concurrent durable updates share one
	// transaction and one fsync instead of queueing for one each. The
	// function may run more than once; each run writes the same record.
	err = s.write(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		// The stripe lock keeps other writers of this record out, but the
		// sweeper may have removed it since the read.
		if _, now, err := s.live(recs, []byte(id)); err != nil {
			return err
		} else if now != rev {
			return fmt.Errorf("store/bolt: record changed outside its lock (revision %d, read %d)", now, rev)
		}
		v, err := put(tx, recs, idx, next, cur)
		if err != nil {
			return err
		}
		next.Version = version(v, 0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The figures are in the file now; the overlay of the old revision
	// would be ignored anyway, so free it.
	s.pace.drop(id)
	return next.Clone(), nil
}

// Delete implements store.Store. It also removes a record it cannot decode,
// so an operator can clear a damaged entry.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.pace.lock(id)()
	err := s.update(func(tx *bbolt.Tx) error {
		recs, idx, err := buckets(tx)
		if err != nil {
			return err
		}
		return remove(recs, idx, []byte(id))
	})
	if err == nil {
		s.pace.drop(id)
	}
	return err
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
		s.stopCommitter()
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// counterValue is a rate-limit count in the counters bucket.
type counterValue struct {
	N     int       `json:"n"`
	Reset time.Time `json:"reset"`
	// M holds a group's members (IncrMember); the sweep and the migration
	// read only Reset, so a group is swept like a count.
	M map[string]int `json:"m,omitempty"`
}

var _ store.Counter = (*Store)(nil)

// Incr implements store.Counter. The count is kept in memory until the
// next commit writes it (counters.go); counts of one process are
// serialised there, so no increment is lost, and the file's lock keeps
// other processes out.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	reset, c, err := s.count(ctx, window.String()+"|"+key, window, func(c *counterValue, reset time.Time) {
		if !c.Reset.Equal(reset) {
			*c = counterValue{Reset: reset}
		}
		c.N++
	})
	return c.N, reset, err
}

// IncrMember implements store.Counter like Incr, with the group's members
// in one value of the counters bucket, under a key of its own ("g" marks
// it).
func (s *Store) IncrMember(ctx context.Context, group, member string, window time.Duration) (map[string]int, time.Time, error) {
	reset, c, err := s.count(ctx, window.String()+"|g|"+group, window, func(c *counterValue, reset time.Time) {
		if !c.Reset.Equal(reset) || c.M == nil {
			*c = counterValue{Reset: reset, M: map[string]int{}}
		}
		c.M[member]++
	})
	return c.M, reset, err
}

// count applies bump to the value under k in the window of that length
// now falls in, in memory (counters.go).
func (s *Store) count(ctx context.Context, k string, window time.Duration, bump func(*counterValue, time.Time)) (time.Time, counterValue, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, counterValue{}, err
	}
	select {
	case <-s.group.stop:
		return time.Time{}, counterValue{}, ErrClosed
	default:
	}
	reset := store.WindowStart(s.now(), window).Add(window)
	c, err := s.counts.add(k, func() (counterValue, error) {
		var c counterValue
		err := s.db.View(func(tx *bbolt.Tx) error {
			b := tx.Bucket(countersBucket)
			if b == nil {
				return errors.New("store/bolt: database file lacks its counters bucket")
			}
			if v := b.Get([]byte(k)); v != nil {
				// A damaged count restarts at zero: failing the request
				// over a rate-limit counter would turn a glitch into an
				// outage.
				_ = json.Unmarshal(v, &c)
			}
			return nil
		})
		return c, err
	}, func(c *counterValue) { bump(c, reset) })
	if err != nil {
		return time.Time{}, counterValue{}, fmt.Errorf("store/bolt: counting: %w", err)
	}
	return reset, c, nil
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

// live decodes the record stored under id, applies the expiry contract and
// returns the record with its stored revision. The record's Version names
// that revision only; read lays the pacing overlay over both.
func (s *Store) live(recs *bbolt.Bucket, id []byte) (*store.Record, uint64, error) {
	v := recs.Get(id)
	if v == nil {
		return nil, 0, store.ErrNotFound
	}
	// The revision leads the stored value; when that revision was decoded
	// before, a copy of it is the record (revisions are never reused).
	peeked, ok := peekRev(v)
	var r *store.Record
	if ok {
		r = s.pace.cached(id, peeked)
	}
	rev := peeked
	if r == nil {
		var err error
		if r, rev, err = decode(id, v); err != nil {
			return nil, 0, err
		}
		// Kept only when the peek names the decoded revision, as it does
		// for every value put writes.
		if ok && peeked == rev {
			s.pace.keep(r.Clone(), rev)
		}
	}
	if r.Expired(s.now()) {
		return nil, 0, store.ErrExpired
	}
	return r, rev, nil
}

// put writes r under its ID with a fresh revision, points its user code at
// it, indexes its expiry unless old (the record it replaces, nil for a new
// one) had the same, and returns the new revision. It leaves r alone: the
// transaction may still roll back.
func put(tx *bbolt.Tx, recs, idx *bbolt.Bucket, r, old *store.Record) (uint64, error) {
	rev, err := recs.NextSequence()
	if err != nil {
		return 0, err
	}
	v, err := json.Marshal(envelope{Rev: rev, Record: r})
	if err != nil {
		return 0, fmt.Errorf("store/bolt: encode record: %w", err)
	}
	if err := recs.Put([]byte(r.ID), v); err != nil {
		return 0, err
	}
	if err := idx.Put([]byte(r.UserCodeHash), []byte(r.ID)); err != nil {
		return 0, err
	}
	if old == nil || !old.ExpiresAt.Equal(r.ExpiresAt) {
		if err := addDue(tx, recordDue(r), kindRecord, []byte(r.ID)); err != nil {
			return 0, err
		}
	}
	return rev, nil
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
	if r, _, err := decode(id, v); err == nil {
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

// decode turns a stored value into a record and its revision, which it
// also sets as the record's Version. The error never includes the key or
// the value: both could end up in a log line.
func decode(id, v []byte) (*store.Record, uint64, error) {
	var e envelope
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	switch {
	case e.Record == nil:
		return nil, 0, fmt.Errorf("%w: no record in stored value", ErrUndecodable)
	case e.Rev == 0:
		return nil, 0, fmt.Errorf("%w: no revision in stored value", ErrUndecodable)
	case e.Record.ID != string(id):
		return nil, 0, fmt.Errorf("%w: stored ID does not match its key", ErrUndecodable)
	}
	e.Record.Version = version(e.Rev, 0)
	return e.Record, e.Rev, nil
}

// peekRev reads the revision from the front of a stored value as put
// writes it ({"rev":N,...}) without decoding the rest; ok is false for
// anything else, which then goes through decode.
func peekRev(v []byte) (uint64, bool) {
	const prefix = `{"rev":`
	if !bytes.HasPrefix(v, []byte(prefix)) {
		return 0, false
	}
	var rev uint64
	i := len(prefix)
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		if rev > (math.MaxUint64-9)/10 {
			return 0, false
		}
		rev = rev*10 + uint64(v[i]-'0')
	}
	if i == len(prefix) || i >= len(v) || v[i] != ',' || rev == 0 {
		return 0, false
	}
	return rev, true
}

// version names a record's state for Record.Version: its stored revision
// and, when a pacing overlay lies over it, that overlay's write (seq > 0).
func version(rev, seq uint64) string {
	// Built in one buffer, one allocation: every poll names a version.
	var buf [41]byte // two 20-digit numbers and the dot
	b := strconv.AppendUint(buf[:0], rev, 10)
	if seq > 0 {
		b = strconv.AppendUint(append(b, '.'), seq, 10)
	}
	return string(b)
}
