package cosmos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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
	s, err := New(context.Background(), Options{
		ConnectionString: connection(t),
		Database:         "devicegate-test",
		Container:        fmt.Sprintf("c%d-%d", time.Now().UnixNano(), containers.Add(1)),
		CreateIfMissing:  true,
		Now:              now,
		Logger:           quiet,
	})
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
	if _, err := s.Update(ctx, "rec-ttl", func(r *store.Record) error { r.LastPoll = c.Now(); return nil }); err != nil {
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
			if _, err := s.Update(ctx, "rec-cas", func(r *store.Record) error { r.Interval++; return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ := s.Get(ctx, "rec-cas")
	st := s.Stats()
	if got.Interval != 8 {
		t.Errorf("interval %d after 8 concurrent increments", got.Interval)
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
