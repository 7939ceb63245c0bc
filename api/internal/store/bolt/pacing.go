package bolt

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Poll pacing lives in memory.
//
// While the person signs in, the device polls every few seconds, and a
// pending poll changes nothing in its record but LastPoll (or, answered
// slow_down, Interval). Written to the file, every such poll would cost a
// write transaction and an fsync: the slowest thing a local devicegate
// does, and on a Raspberry Pi's SD card wear for nothing. Those two
// figures only pace the device. Forgetting them in a restart costs one
// poll taken as the device's first, and a slow_down raise the device keeps
// anyway (RFC 8628 §3.5). bbolt's file lock means one process owns the
// file, so that process's memory is the only place they are needed.
//
// So an Update whose function changes only LastPoll and Interval is kept
// here, as an overlay on the stored revision it was computed from. Reads
// lay the overlay over the record while that revision is current; the next
// durable write of the record folds it into the file; Delete and Sweep drop
// it. Everything else a device poll decides (delivering tokens, claiming a
// passthrough exchange) still goes to the file before it is answered.

// paceLocks is the number of lock stripes serialising updates of a record.
// Updates of different records rarely share a stripe, so they still batch.
const paceLocks = 1024

// pace is the in-memory pacing of one record.
type pace struct {
	rev      uint64 // the stored revision the figures apply to
	seq      uint64 // this overlay's write, so Version changes on each
	lastPoll time.Time
	interval int
}

// pacer holds the overlays and the locks that make an overlay write a
// compare-and-swap: Update and Delete of a record hold its stripe from the
// read to the write, so no other write of that record comes between.
type pacer struct {
	seed  maphash.Seed
	locks [paceLocks]sync.Mutex

	mu   sync.Mutex
	m    map[string]pace
	next uint64 // last seq handed out

	// decoded keeps the last decoded revision of records recently read, so
	// a pending poll — which reads its record and, its pacing aside,
	// changes nothing — does not decode the same JSON again (decode.go).
	decoded map[string]decodedRec
}

// decodedRec is a record as decoded from stored revision rev. It is never
// handed out: readers get a clone.
type decodedRec struct {
	rev uint64
	r   *store.Record
}

// maxDecoded bounds the decoded records kept (a few hundred bytes each);
// past it an arbitrary one makes room, so a store with more live flows
// than this decodes some polls again but never grows without bound.
const maxDecoded = 16384

// newPacer starts the overlay sequence at the wall clock in nanoseconds, so
// a Version is not repeated after a restart: the process before it would
// have needed more than one overlay write per nanosecond to get there.
func newPacer(now time.Time) *pacer {
	return &pacer{seed: maphash.MakeSeed(), m: make(map[string]pace), next: uint64(now.UnixNano()), decoded: make(map[string]decodedRec)}
}

// lock takes the stripe of id and returns its unlock.
func (p *pacer) lock(id string) func() {
	l := &p.locks[maphash.String(p.seed, id)%paceLocks]
	l.Lock()
	return l.Unlock
}

// apply lays id's overlay over r, read at stored revision rev, and sets
// r.Version to name both. An overlay of an older revision is ignored: a
// durable write has folded it in since.
func (p *pacer) apply(r *store.Record, rev uint64) {
	p.mu.Lock()
	o, ok := p.m[r.ID]
	p.mu.Unlock()
	if !ok || o.rev != rev {
		r.Version = version(rev, 0)
		return
	}
	r.LastPoll, r.Interval = o.lastPoll, o.interval
	r.Version = version(rev, o.seq)
}

// set records r's pacing as the overlay of stored revision rev and sets
// r.Version to match. The caller holds r's stripe.
func (p *pacer) set(r *store.Record, rev uint64) {
	p.mu.Lock()
	p.next++
	seq := p.next
	p.m[r.ID] = pace{rev: rev, seq: seq, lastPoll: r.LastPoll, interval: r.Interval}
	p.mu.Unlock()
	r.Version = version(rev, seq)
}

// drop forgets the overlays and decoded copies of ids.
func (p *pacer) drop(ids ...string) {
	p.mu.Lock()
	for _, id := range ids {
		delete(p.m, id)
		delete(p.decoded, id)
	}
	p.mu.Unlock()
}

// cached returns a copy of id's record as decoded from revision rev, or
// nil if that revision is not kept. (id is the key's bytes: the map
// lookup converts them without a copy.)
func (p *pacer) cached(id []byte, rev uint64) *store.Record {
	p.mu.Lock()
	d, ok := p.decoded[string(id)]
	p.mu.Unlock()
	if !ok || d.rev != rev {
		return nil
	}
	return d.r.Clone()
}

// keep remembers r as decoded from revision rev; r must not be changed
// afterwards (the caller keeps a clone).
func (p *pacer) keep(r *store.Record, rev uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.decoded[r.ID]; !ok && len(p.decoded) >= maxDecoded {
		for k := range p.decoded {
			delete(p.decoded, k)
			break
		}
	}
	p.decoded[r.ID] = decodedRec{rev: rev, r: r}
}

// size is how many overlays are kept; tests use it to see they are dropped.
func (p *pacer) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
