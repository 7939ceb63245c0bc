package cosmos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// connection returns the test server's connection string. The suite skips
// only on a developer machine without the server; under CI it must run.
func connection(t *testing.T) string {
	t.Helper()
	cs := os.Getenv("DEVICEGATE_TEST_COSMOS")
	if cs == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DEVICEGATE_TEST_COSMOS is unset under CI; start the server: eval \"$(bash scripts/cosmos-server.sh start)\"; export DEVICEGATE_TEST_COSMOS")
		}
		t.Skip("DEVICEGATE_TEST_COSMOS unset; start the server with scripts/cosmos-server.sh (bash scripts/test.sh does)")
	}
	return cs
}

var containers atomic.Int64

func open(t *testing.T, now store.Clock) *Store {
	t.Helper()
	return openWith(t, Options{Now: now})
}

// openWith opens a fresh container on the test server with o's other
// settings.
func openWith(t *testing.T, o Options) *Store {
	t.Helper()
	o.ConnectionString = connection(t)
	o.Database = "devicegate-test"
	o.Container = fmt.Sprintf("c%d-%d", time.Now().UnixNano(), containers.Add(1))
	o.CreateIfMissing = true
	o.Logger = quiet
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now store.Clock) store.Store { return open(t, now) })
}

func TestCounterConformance(t *testing.T) {
	storetest.RunCounter(t, func(t *testing.T, now store.Clock) store.Counter { return open(t, now) })
}

// TestTTLFollowsTheRecord: each write sets the item's own ttl to the time
// left, so Cosmos (which counts TTL from the last write) removes the item
// when the record's retention ends.
func TestTTLFollowsTheRecord(t *testing.T) {
	c := storetest.NewClock()
	s := open(t, c.Now)
	ctx := context.Background()
	r := &store.Record{ID: "rec-ttl", UserCodeHash: "uc-ttl", ClientID: "tv", Status: store.StatusPending, CreatedAt: c.Now(), ExpiresAt: c.Now().Add(10 * time.Minute), Interval: 5}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	ttlOf := func(id string) int {
		resp, err := s.container.ReadItem(ctx, pk(id), id, nil)
		if err != nil {
			t.Fatal(err)
		}
		var it struct {
			TTL int `json:"ttl"`
		}
		json.Unmarshal(resp.Value, &it)
		return it.TTL
	}
	want := int((10*time.Minute + store.Retention) / time.Second)
	if got := ttlOf("rec-ttl"); got != want {
		t.Errorf("record ttl %d, want %d", got, want)
	}
	if got := ttlOf(userKey("uc-ttl")); got != want {
		t.Errorf("user-code key ttl %d, want %d", got, want)
	}
	c.Advance(4 * time.Minute)
	if _, err := s.Update(ctx, "rec-ttl", func(r *store.Record) error { r.Failures++; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := ttlOf("rec-ttl"); got != want-240 {
		t.Errorf("ttl after an update 4 minutes later: %d, want %d", got, want-240)
	}
}

// TestTTLOnBindingsAndCounters: a refresh binding's item lives as long as
// the binding has left, and a rate counter's item ends a minute after its
// window: neither is ever written to live forever (ttl -1 or absent), so a
// leaked or abandoned one is swept by Cosmos DB itself.
func TestTTLOnBindingsAndCounters(t *testing.T) {
	c := storetest.NewClock()
	s := open(t, c.Now)
	ctx := context.Background()
	ttlOf := func(id string) int {
		resp, err := s.container.ReadItem(ctx, pk(id), id, nil)
		if err != nil {
			t.Fatal(err)
		}
		var it struct {
			TTL *int `json:"ttl"`
		}
		json.Unmarshal(resp.Value, &it)
		if it.TTL == nil {
			t.Fatalf("item %s has no ttl", id)
		}
		return *it.TTL
	}
	b := &store.Binding{ID: "bind-ttl", ClientID: "tv", Upstream: "acme", ExpiresAt: c.Now().Add(90 * 24 * time.Hour)}
	if err := s.PutBinding(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, want := ttlOf(bindingKey("bind-ttl")), int(90*24*time.Hour/time.Second); got != want {
		t.Errorf("binding ttl %d, want %d", got, want)
	}
	const window = 10 * time.Minute
	if _, _, err := s.Incr(ctx, "verify|192.0.2.1", window); err != nil {
		t.Fatal(err)
	}
	start := store.WindowStart(c.Now(), window)
	sum := sha256.Sum256([]byte(window.String() + "|verify|192.0.2.1|" + start.UTC().Format(time.RFC3339)))
	want := int(start.Add(window).Sub(c.Now())/time.Second) + 60
	if got := ttlOf("c." + hex.EncodeToString(sum[:16])); got != want {
		t.Errorf("counter ttl %d, want %d (the window's end and a minute)", got, want)
	}
	// A group of counts (IncrMember) likewise.
	if _, _, err := s.IncrMember(ctx, "verify|192.0.2.0/24", "1", window); err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256([]byte(window.String() + "|g|verify|192.0.2.0/24|" + start.UTC().Format(time.RFC3339)))
	if got := ttlOf("c." + hex.EncodeToString(sum[:16])); got != want {
		t.Errorf("group counter ttl %d, want %d (the window's end and a minute)", got, want)
	}
}

// TestContentionRetriesOnETag: concurrent updates of one record meet 412s
// and retry; none is lost (the suite checks the sum) and Stats counts the
// retries, with no query ever sent.
func TestContentionRetriesOnETag(t *testing.T) {
	c := storetest.NewClock()
	s := open(t, c.Now)
	ctx := context.Background()
	r := &store.Record{ID: "rec-cas", UserCodeHash: "uc-cas", Status: store.StatusPending, CreatedAt: c.Now(), ExpiresAt: c.Now().Add(time.Hour)}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	s.ResetStats()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.Update(ctx, "rec-cas", func(r *store.Record) error { r.Failures++; return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ := s.Get(ctx, "rec-cas")
	st := s.Stats()
	if got.Failures != 8 {
		t.Errorf("failures %d after 8 concurrent increments", got.Failures)
	}
	if st.Retries == 0 {
		t.Errorf("no 412 retry under contention: %+v", st)
	}
	if st.Queries != 0 || st.Replaces < 8 || st.PointReads < 8 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("8 contended updates: %+v", st)
}

func TestOptionsValidation(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Options{Database: "d", Container: "c"}); err == nil || !strings.Contains(err.Error(), "connection string") {
		t.Errorf("no connection: %v", err)
	}
	if _, err := New(ctx, Options{ConnectionString: "x", Container: "c"}); err == nil {
		t.Error("no database accepted")
	}
	_, err := New(ctx, Options{ConnectionString: "AccountEndpoint=nope;AccountKey=s3cr3t-value", Database: "d", Container: "c"})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("bad connection string: %v", err)
	}
}

// contender answers the next forced replaces (PUT of a document) with 412
// Precondition Failed, as Cosmos DB does when another writer changed the
// item since it was read; forced < 0 means every replace. Everything else
// goes to the test server.
type contender struct {
	mu     sync.Mutex
	forced int
	seen   int
	// onRequest, if set, sees each request's method and how many 412s
	// were forced before it.
	onRequest func(method string, seen int)
}

func (c *contender) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	seen, on := c.seen, c.onRequest
	c.mu.Unlock()
	if on != nil {
		on(r.Method, seen)
	}
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/docs/") {
		c.mu.Lock()
		force := c.forced != 0
		if c.forced > 0 {
			c.forced--
		}
		if force {
			c.seen++
		}
		c.mu.Unlock()
		if force {
			body := `{"code":"PreconditionFailed","message":"one of the specified pre-condition is not met"}`
			return &http.Response{
				StatusCode: http.StatusPreconditionFailed, Status: "412 Precondition Failed", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header:  http.Header{"Content-Type": {"application/json"}, "X-Ms-Request-Charge": {"1"}},
				Body:    io.NopCloser(strings.NewReader(body)),
				Request: r, ContentLength: int64(len(body)),
			}, nil
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *contender) force(n int) { c.mu.Lock(); c.forced, c.seen = n, 0; c.mu.Unlock() }
func (c *contender) count() int  { c.mu.Lock(); defer c.mu.Unlock(); return c.seen }

// openContended opens a store whose replaces the returned contender can
// make fail with 412, with a fixed jitter source.
func openContended(t *testing.T, limit time.Duration) (*Store, *contender, *store.Record) {
	t.Helper()
	c := storetest.NewClock()
	ct := &contender{}
	s := openWith(t, Options{Now: c.Now, HTTPClient: &http.Client{Transport: ct}, Rand: rand.NewPCG(1, 2), ContentionLimit: limit})
	r := &store.Record{ID: "rec-412", UserCodeHash: "uc-412", Status: store.StatusPending, CreatedAt: c.Now(), ExpiresAt: c.Now().Add(time.Hour), Interval: 5}
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return s, ct, r
}

// TestUpdateOutlastsAnyFixedTryCount: a record that loses many more
// compare-and-swap rounds than any small fixed count (40 here; the old
// loop gave up after 10) is still written, exactly once, while the context
// lasts.
func TestUpdateOutlastsAnyFixedTryCount(t *testing.T) {
	s, ct, r := openContended(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ct.force(40)
	runs := 0
	got, err := s.Update(ctx, r.ID, func(rec *store.Record) error { runs++; rec.Failures++; return nil })
	if err != nil {
		t.Fatalf("Update after 40 lost rounds: %v", err)
	}
	if ct.count() != 40 || runs != 41 {
		t.Errorf("%d forced 412s, fn ran %d times; want 40 and 41", ct.count(), runs)
	}
	stored, _ := s.Get(ctx, r.ID)
	if got.Failures != 1 || stored.Failures != 1 {
		t.Errorf("failures returned %d, stored %d; want 1 (one increment)", got.Failures, stored.Failures)
	}
	if st := s.Stats(); st.Retries != 40 {
		t.Errorf("Stats.Retries = %d, want 40", st.Retries)
	}
}

// expiring is a context whose deadline arrives when expire is called: a
// deadline on a clock the test moves, so how many rounds fit before it does
// not depend on how fast a loaded machine runs them (with a 300 ms timer,
// a slow first read made the count, and the word "contended", flaky).
type expiring struct {
	context.Context
	done chan struct{}
	once sync.Once
	at   time.Time
}

func newExpiring() *expiring {
	return &expiring{Context: context.Background(), done: make(chan struct{}), at: time.Now().Add(time.Hour)}
}

func (e *expiring) Deadline() (time.Time, bool) { return e.at, true }
func (e *expiring) Done() <-chan struct{}       { return e.done }
func (e *expiring) Err() error {
	select {
	case <-e.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
func (e *expiring) expire() { e.once.Do(func() { close(e.done) }) }

// TestUpdateEndsWithTheContextsDeadline: under contention that never ends,
// Update stops when its context does and says why; nothing is written.
// The deadline arrives as the fourth round begins, after three lost ones.
func TestUpdateEndsWithTheContextsDeadline(t *testing.T) {
	s, ct, r := openContended(t, time.Hour) // the context's deadline must win
	const rounds = 3
	ctx := newExpiring()
	ct.force(-1)
	ct.mu.Lock()
	ct.onRequest = func(method string, seen int) {
		if method == http.MethodGet && seen == rounds {
			ctx.expire()
		}
	}
	ct.mu.Unlock()
	_, err := s.Update(ctx, r.ID, func(rec *store.Record) error { rec.Failures++; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), fmt.Sprintf("contended after %d lost rounds", rounds)) {
		t.Errorf("Update under endless contention: %v, want a contention error after %d rounds matching context.DeadlineExceeded", err, rounds)
	}
	if ct.count() != rounds {
		t.Errorf("%d rounds, want %d: Update went on past its deadline", ct.count(), rounds)
	}
	ct.force(0)
	if got, _ := s.Get(context.Background(), r.ID); got.Failures != 0 {
		t.Errorf("failures %d after a failed Update, want 0", got.Failures)
	}
}

// TestUpdateHasACeilingWithoutADeadline: a context without a deadline
// (request contexts have none) gets ContentionLimit, so a request never
// retries past its own answer.
func TestUpdateHasACeilingWithoutADeadline(t *testing.T) {
	s, ct, r := openContended(t, 300*time.Millisecond)
	ct.force(-1)
	done := make(chan error, 1)
	go func() {
		_, err := s.Update(context.Background(), r.ID, func(rec *store.Record) error { rec.Failures++; return nil })
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Update without a deadline under endless contention: %v, want the contention limit's deadline", err)
		}
	case <-time.After(time.Minute): // a watchdog, not a measurement: the limit is 300 ms
		t.Fatal("Update without a deadline kept retrying past its contention limit")
	}
	if s.limit != 300*time.Millisecond {
		t.Errorf("limit %v", s.limit)
	}
	if d := openWith(t, Options{}); d.limit != DefaultContentionLimit {
		t.Errorf("default limit %v, want %v", d.limit, DefaultContentionLimit)
	}
}

// TestBackoffIsFullJitter: the waits between rounds are drawn from the
// whole range [0, ceiling), from the injected source, so writers that lost
// together spread out instead of colliding again in step. A fixed step
// with a little noise (what the loop did before) fails the spread check.
func TestBackoffIsFullJitter(t *testing.T) {
	for _, try := range []int{0, 3, 10} {
		ceil := min(backoffCap, backoffBase<<try)
		j := newJitter(rand.NewPCG(7, 8))
		lo, hi := ceil, time.Duration(0)
		for range 1000 {
			d := j.below(ceil)
			if d < 0 || d >= ceil {
				t.Fatalf("try %d: wait %v outside [0, %v)", try, d, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceil/10 || hi < ceil*9/10 {
			t.Errorf("try %d: waits span only [%v, %v] of [0, %v)", try, lo, hi, ceil)
		}
		// The same seed draws the same waits: the randomness is injected.
		a, b := newJitter(rand.NewPCG(7, 8)), newJitter(rand.NewPCG(7, 8))
		for range 10 {
			if a.below(ceil) != b.below(ceil) {
				t.Fatal("two jitters from one seed disagree")
			}
		}
	}
}

// vanishing makes a counter item look as if it disappears between every
// create and the next increment, for the first rounds: each patch answers
// 404 and each create 409, as when another instance created the item and
// its ttl removed it at once. Everything else goes to the test server.
type vanishing struct {
	mu     sync.Mutex
	rounds int
}

func (v *vanishing) RoundTrip(r *http.Request) (*http.Response, error) {
	status := 0
	v.mu.Lock()
	if v.rounds > 0 && strings.Contains(r.URL.Path, "/docs") {
		switch r.Method {
		case http.MethodPatch:
			status = http.StatusNotFound
		case http.MethodPost:
			status = http.StatusConflict
			v.rounds--
		}
	}
	v.mu.Unlock()
	if status == 0 {
		return http.DefaultTransport.RoundTrip(r)
	}
	body := `{"code":"x","message":"forced by the test"}`
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
		Request: r, ContentLength: int64(len(body)),
	}, nil
}

// TestIncrOutlastsAnyFixedTryCount: the counter's create-or-increment loop
// is bounded by the context like Update, not by a count of rounds (the old
// loop gave up after 10), and it ends with the context when the item never
// settles.
func TestIncrOutlastsAnyFixedTryCount(t *testing.T) {
	v := &vanishing{rounds: 25}
	s := openWith(t, Options{Now: storetest.NewClock().Now, HTTPClient: &http.Client{Transport: v}, Rand: rand.NewPCG(3, 4)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, _, err := s.Incr(ctx, "k", time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Incr after 25 vanished rounds: %d, %v; want 1", n, err)
	}
	if st := s.Stats(); st.Retries != 25 {
		t.Errorf("Stats.Retries = %d, want 25", st.Retries)
	}

	v.mu.Lock()
	v.rounds = 1 << 30
	v.mu.Unlock()
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, _, err := s.Incr(short, "k2", time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Incr on an item that never settles: %v, want an error matching context.DeadlineExceeded", err)
	}
}
