package bolt

import (
	"errors"
	"runtime"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Group commit.
//
// Every durable write — Create, an Update that writes — goes through
// one committer goroutine. It takes the first write waiting, then every
// other one already waiting (up to maxGroup), runs them all in one write
// transaction, commits (one fsync for all) and only then answers each. While
// it commits, new writes queue up, and the next transaction takes them all:
// under load the group grows by itself, and a lone write is committed at
// once, with no timer to wait for (bbolt's own Batch waits for one).
//
// Each transaction also writes the rate-limit counts made since the last
// one (counters.go), so a request's counts are on disk when its write is.
//
// So an answered write is on disk — TestCreateSurvivesCrash kills a process
// with Creates in flight and finds every answered one after reopening.

// maxGroup bounds the writes one transaction holds.
const maxGroup = 1024

// countDelay is how long pending counts wait for a write to ride with
// before they get a commit of their own. Under load a write comes long
// before; a count no write follows (a 429, a page view) reaches the file
// this much later.
const countDelay = 50 * time.Millisecond

// ErrClosed is what a write gets once Close has begun.
var ErrClosed = errors.New("store/bolt: store closed")

// groupCall is one write waiting for the committer.
type groupCall struct {
	fn   func(*bbolt.Tx) error
	done chan error // buffered: the committer never waits for the caller
	// hold, if set, receives how long the transaction that committed fn
	// held bbolt's writer lock, commit included (the sweep's slices).
	hold *time.Duration
}

// committer runs the group commits.
type committer struct {
	calls chan groupCall // unbuffered: a waiting write is a blocked send
	stop  chan struct{}
	done  chan struct{}
}

func (s *Store) startCommitter() {
	s.group = &committer{calls: make(chan groupCall), stop: make(chan struct{}), done: make(chan struct{})}
	go s.commitLoop()
}

// write runs fn in a group-committed write transaction and returns when
// that transaction is on disk. fn may run more than once, each time in a
// fresh transaction, and must leave nothing behind when it returns
// store.ErrConflict (a refusal that is the caller's answer, not a fault):
// the others in its group are committed regardless. Any other error rolls
// the group back, and each of its writes is then run alone, so an error is
// only ever its own write's.
func (s *Store) write(fn func(*bbolt.Tx) error) error {
	return s.writeTimed(fn, nil)
}

// writeTimed is write that also reports, in *hold, how long the
// transaction committing fn held the writer lock.
func (s *Store) writeTimed(fn func(*bbolt.Tx) error, hold *time.Duration) error {
	c := groupCall{fn: fn, done: make(chan error, 1), hold: hold}
	select {
	case s.group.calls <- c:
	case <-s.group.stop:
		return ErrClosed
	}
	return <-c.done
}

func (s *Store) commitLoop() {
	defer close(s.group.done)
	var (
		group []groupCall
		// flush is armed while counts wait (counters.go): they ride the
		// next write's commit, or get one of their own when it fires.
		flush <-chan time.Time
	)
	for {
		group = group[:0]
		select {
		case c := <-s.group.calls:
			group = append(group, c)
		case <-s.counts.wake:
			if flush == nil {
				flush = time.After(countDelay)
			}
			continue
		case <-flush:
			flush = nil
			if s.counts.pending() == 0 {
				continue // a write's commit took them along
			}
		case <-s.group.stop:
			// What was counted before Close is written before it returns.
			if s.counts.pending() > 0 {
				s.commitGroup(nil)
			}
			return
		}
		// Let every goroutine that is ready to run reach its write before
		// the group is closed. The write that woke the committer made it
		// the next to run, ahead of the run queue (runtime/proc.go:
		// goready → runqput with next=true). With one P (GOMAXPROCS=1: a
		// one-vCPU host, a CPU-pinned process) the other writers then ran
		// only when the P was free: at preemptions, or when the runtime's
		// monitor handed the P on during an fdatasync — which it stops
		// doing once it has backed off to 10 ms sleeps, longer than a
		// commit. Then 64 waiting writers were committed one by one, the
		// last waiting seconds (bench part 1d: 1 create per commit, the
		// longest commit 29 ms, answers up to 3 s). Yielding once costs a
		// lone write nothing: with nothing else to run it returns at once.
		runtime.Gosched()
	gather:
		for len(group) < maxGroup {
			select {
			case c := <-s.group.calls:
				group = append(group, c)
			default:
				break gather
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup runs group in one transaction, with the pending rate-limit
// counts written first, and answers each call.
func (s *Store) commitGroup(group []groupCall) {
	errs := make([]error, len(group))
	var (
		w        written
		countErr error
		// Wall times, measured for the sweep and CommitStats; they
		// decide nothing.
		start, worked time.Time
		ran           *bbolt.Tx
	)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		start, ran = time.Now(), tx
		defer func() { worked = time.Now() }()
		if w, countErr = s.counts.write(tx); countErr != nil {
			return countErr
		}
		for i, c := range group {
			errs[i] = c.fn(tx)
			if errs[i] != nil && !errors.Is(errs[i], store.ErrConflict) {
				return errs[i]
			}
		}
		return nil
	})
	switch {
	case err == nil:
		s.counts.committed(w)
		s.commits.Add(1)
		s.grouped.Add(uint64(len(group)))
		held := time.Since(start)
		s.timing.add(held, worked.Sub(start), ran.Stats(), len(group))
		for _, c := range group {
			if c.hold != nil {
				*c.hold = held
			}
		}
	case countErr != nil || len(group) > 1:
		// Rolled back: nothing of the group is stored. The counts first,
		// so that they are still on disk before any write of the group
		// is answered; then each write alone, so that one failure
		// answers only its own caller.
		if countErr == nil {
			if err := s.update(func(tx *bbolt.Tx) (err error) {
				w, err = s.counts.write(tx)
				return err
			}); err == nil {
				s.counts.committed(w)
			} else {
				countErr = err
			}
		}
		for i, c := range group {
			start := time.Now()
			if errs[i] = s.update(c.fn); errs[i] == nil {
				s.grouped.Add(1)
			}
			if c.hold != nil {
				*c.hold = time.Since(start)
			}
		}
		if countErr != nil {
			// The counts stay in memory, right for this process, and
			// the next commit tries them again.
			s.log.Error("bolt store could not write rate-limit counts", "err", countErr)
		}
	default:
		errs[0] = err
		s.counts.again()
	}
	for i, c := range group {
		c.done <- errs[i]
	}
}

// stopCommitter ends the committer after the group it is committing; a
// write arriving later gets ErrClosed.
func (s *Store) stopCommitter() {
	close(s.group.stop)
	<-s.group.done
}

// update runs fn in a write transaction of its own, counted in
// CommitStats.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	err := s.db.Update(fn)
	if err == nil {
		s.commits.Add(1)
	}
	return err
}

// CommitStats counts what the store has committed since Open.
type CommitStats struct {
	Commits uint64 // write transactions committed, each with its fsyncs
	Writes  uint64 // group-committed writes they held (Creates, durable Updates, binding writes)
	Pages   uint64 // pages bbolt wrote for them
	// Held is the time the group commits held bbolt's writer lock, summed;
	// Spill and Write the parts of it bbolt's Tx.Stats times: laying the
	// dirty nodes out as pages (the mmap grown when the file outgrows
	// it), and writing those pages and the meta page, each with its
	// fdatasync. The rest of Held is the writes themselves and the file
	// growth (a truncate and an fsync), which bbolt does not time.
	Held, Spill, Write time.Duration
	// Over counts the commits that held the lock longer than each of
	// CommitBounds: Over[i] those over CommitBounds[i].
	Over [len(CommitBounds)]uint64
}

// CommitBounds are the hold times CommitStats.Over counts commits beyond.
var CommitBounds = [...]time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond, time.Second}

// CommitTiming is one group commit.
type CommitTiming struct {
	Held, Work, Spill, Write time.Duration // Work: running the writes, before bbolt's Commit
	Pages                    int64         // pages written
	Writes                   int           // group-committed writes it held
}

// commitTiming sums the group commits' times for CommitStats and keeps
// the longest. The committer adds once per commit, after its fdatasyncs,
// so one uncontended lock there costs nothing that counts.
type commitTiming struct {
	mu                 sync.Mutex
	held, spill, write time.Duration
	over               [len(CommitBounds)]uint64
	longest            CommitTiming
}

func (c *commitTiming) add(held, work time.Duration, st bbolt.TxStats, writes int) {
	spill, write := st.GetSpillTime(), st.GetWriteTime()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held += held
	c.spill += spill
	c.write += write
	for i, b := range CommitBounds {
		if held > b {
			c.over[i]++
		}
	}
	if held > c.longest.Held {
		c.longest = CommitTiming{Held: held, Work: work, Spill: spill, Write: write, Pages: st.GetWrite(), Writes: writes}
	}
}

// CommitStats reports the commits since Open. Benchmarks read it: writes
// per commit is the group size, pages per Create what one costs the disk,
// and the longest commit what a write answered last waited for at most.
func (s *Store) CommitStats() CommitStats {
	st := s.db.Stats()
	t := &s.timing
	t.mu.Lock()
	defer t.mu.Unlock()
	return CommitStats{
		Commits: s.commits.Load(), Writes: s.grouped.Load(), Pages: uint64(max(0, st.TxStats.GetWrite())),
		Held: t.held, Spill: t.spill, Write: t.write, Over: t.over,
	}
}

// TakeLongestCommit returns the group commit that held the writer lock
// longest since the last call (or Open), and starts over: a benchmark
// calls it before and after each batch of writes.
func (s *Store) TakeLongestCommit() CommitTiming {
	s.timing.mu.Lock()
	defer s.timing.mu.Unlock()
	l := s.timing.longest
	s.timing.longest = CommitTiming{}
	return l
}
