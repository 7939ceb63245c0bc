package cosmos

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Poll pacing lives in each instance's memory.
//
// While the person signs in, the device polls every few seconds, and a
// pending poll changes nothing in its record but LastPoll (or, answered
// slow_down, Interval). Written to Cosmos DB, every such poll would cost a
// replace (≈ 5–6 RU) on top of its point read (≈ 1 RU): most of what a
// deployment pays, since polls are most of its requests. Those two figures
// only pace the device (store.Record.LastPoll): pacing is a courtesy to
// the provider-less proxy, not a secret and not a security boundary. So an
// Update whose function changes only them keeps them here, as an overlay
// on the stored version (ETag) it was computed from, and writes nothing.
// Reads lay the overlay over the record while that ETag is current; the
// next durable write of the record (by any instance that holds the
// overlay) carries the figures into the item; Delete drops it.
//
// What this means with several instances: each instance paces the polls it
// answers. A device whose polls rotate over n instances can poll up to n
// times an interval before one of them says slow_down, and a slow_down
// raise is known to the instance that gave it (and, after the next durable
// write, to all). SECURITY.md and DEPLOY.md ("Several instances") say so.
// Shared pacing never bounded a client that ignores slow_down either: an
// early poll costs its read whichever instance answers it.
//
// The overlays are keyed by record ID, the keyed hash of the device code,
// so the map holds no live code. It is bounded (maxPaces): when full,
// overlays of expired records go first, then arbitrary ones; a device whose
// overlay is dropped has its next poll taken as its first.

// maxPaces bounds the overlays kept (≈ 200 bytes each, so ≈ 13 MB at most).
// More live flows than this answered by one instance means some devices'
// early polls go unnoticed, never that memory grows without bound.
const maxPaces = 1 << 16

// pace is one record's pacing in this instance.
type pace struct {
	etag      azcore.ETag // the stored version the figures apply to
	seq       uint64      // this overlay's write, so Version changes on each
	lastPoll  time.Time
	interval  int
	expiresAt time.Time // the record's, so that a full map sheds the dead first
}

type pacer struct {
	mu   sync.Mutex
	m    map[string]pace
	next uint64 // the last seq handed out
	max  int
}

// newPacer starts the overlay sequence at the wall clock in nanoseconds,
// so that a Version is not repeated after a restart.
func newPacer(now time.Time, limit int) *pacer {
	return &pacer{m: make(map[string]pace), next: uint64(now.UnixNano()), max: limit}
}

// apply lays r's overlay over r, read at etag, sets r.Version to name both,
// and returns the overlay's seq (0 for none). An overlay of another ETag is
// ignored: the item has been written since.
func (p *pacer) apply(r *store.Record, etag azcore.ETag) uint64 {
	p.mu.Lock()
	o, ok := p.m[r.ID]
	p.mu.Unlock()
	if !ok || o.etag != etag {
		r.Version = string(etag)
		return 0
	}
	r.LastPoll, r.Interval = o.lastPoll, o.interval
	r.Version = version(etag, o.seq)
	return o.seq
}

// set records r's pacing as the overlay of etag, if the overlay is still
// the one the caller read (seen, 0 for none): a compare-and-swap, so two
// polls answered at once by this instance cannot both count as on time.
// It sets r.Version on success.
func (p *pacer) set(r *store.Record, etag azcore.ETag, seen uint64, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.m[r.ID]
	cur := uint64(0)
	if ok && o.etag == etag {
		cur = o.seq
	}
	if cur != seen {
		return false
	}
	if !ok && len(p.m) >= p.max {
		p.shed(now)
	}
	p.next++
	p.m[r.ID] = pace{etag: etag, seq: p.next, lastPoll: r.LastPoll, interval: r.Interval, expiresAt: r.ExpiresAt}
	r.Version = version(etag, p.next)
	return true
}

// shed makes room in a full map: overlays of expired records first, then
// arbitrary ones, down to seven eighths of the bound, so that a map full
// of live overlays is scanned once per max/8 new ones, not on each.
func (p *pacer) shed(now time.Time) {
	for id, o := range p.m {
		if !now.Before(o.expiresAt) {
			delete(p.m, id)
		}
	}
	for id := range p.m {
		if len(p.m) <= p.max-max(1, p.max/8) {
			break
		}
		delete(p.m, id)
	}
}

// dropIf forgets id's overlay if it belongs to etag (a durable write has
// replaced that version; an overlay a later read made is kept).
func (p *pacer) dropIf(id string, etag azcore.ETag) {
	p.mu.Lock()
	if o, ok := p.m[id]; ok && o.etag == etag {
		delete(p.m, id)
	}
	p.mu.Unlock()
}

// drop forgets id's overlay.
func (p *pacer) drop(id string) {
	p.mu.Lock()
	delete(p.m, id)
	p.mu.Unlock()
}

// size is how many overlays are kept.
func (p *pacer) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// version names a stored ETag and an overlay write.
// parseVersion splits a Version that version made into its ETag and
// overlay seq. Cosmos DB ETags are quoted, so a "+" followed by base-36
// digits to the end is the seq.
func parseVersion(v string) (etag azcore.ETag, seq uint64, ok bool) {
	if v == "" {
		return "", 0, false
	}
	if i := strings.LastIndexByte(v, '+'); i >= 0 {
		if n, err := strconv.ParseUint(v[i+1:], 36, 64); err == nil {
			return azcore.ETag(v[:i]), n, true
		}
	}
	return azcore.ETag(v), 0, true
}

func version(etag azcore.ETag, seq uint64) string {
	if seq == 0 {
		return string(etag)
	}
	return string(etag) + "+" + strconv.FormatUint(seq, 36)
}
