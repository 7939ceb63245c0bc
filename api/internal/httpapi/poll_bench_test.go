package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/httpapi"
	"github.com/devicegate/devicegate/api/internal/httpapi/httpapitest"
	"github.com/devicegate/devicegate/api/internal/pages"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/seal"
	"github.com/devicegate/devicegate/api/internal/serve"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// The poll path in process, for `go test -bench`: one pending poll through
// the whole router (security headers, request log, routing, form, client
// check, hashing, the memory store's Update, the JSON error), with no
// network server around it, so allocations and instructions are the
// router's own. Building the request is part of every iteration; it is
// measured alone by BenchmarkPendingPoll/request.

// benchPollRouter wires the real router over st as api/main.go does: a
// text request log (serve.Logger) to io.Discard, a public client, an
// interval of 1 s.
// The clock moves on one interval per token request, so every poll is on
// time and answered authorization_pending, as a well-behaved device is.
func benchPollRouter(b *testing.B, st *memory.Store) (http.Handler, *atomic.Int64) {
	b.Helper()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	key := bytes.Repeat([]byte{7}, 32)
	hasher, err := deviceflow.NewHasher(key)
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := seal.New(rand.Reader, seal.DeriveKey(key))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := deviceflow.New(deviceflow.Config{
		Store: st, Hasher: hasher, Sealer: sealer, Now: now, Rand: rand.Reader,
		Lifetime: 10 * 365 * 24 * time.Hour, Interval: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	preset, _ := upstream.Lookup("generic")
	preset.DisplayName = "Bench Music"
	preset.AuthURL = "https://accounts.bench.test/authorize"
	preset.TokenURL = "http://127.0.0.1:1/token"
	up, err := upstream.New(upstream.Options{Preset: preset, ClientID: "up", ClientSecret: "up-secret",
		RedirectURL: "http://127.0.0.1:1/api/callback", Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	renderer, err := pages.New()
	if err != nil {
		b.Fatal(err)
	}
	logger := serve.Logger("info", "text", io.Discard, io.Discard) // as api/main.go builds it
	h, err := httpapi.New(httpapi.Options{
		Service: svc, Upstream: up, Pages: renderer, Clients: findClient,
		PublicURL: "http://127.0.0.1:1", Logger: logger, Now: now, Rand: rand.Reader,
		Limiter: ratelimit.New(st, logger),
	})
	if err != nil {
		b.Fatal(err)
	}
	return h, &offset
}

func benchPostForm(path string, body []byte) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1"+path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "127.0.0.1:40000"
	return r
}

// benchDeviceCode authorizes one flow through the router.
func benchDeviceCode(b *testing.B, h http.Handler) string {
	b.Helper()
	w := httpapitest.NewNopWriter(true)
	h.ServeHTTP(w, benchPostForm("/api/authorize", []byte("client_id=tv")))
	var a struct {
		DeviceCode string `json:"device_code"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Status != http.StatusOK {
		b.Fatalf("authorize: %d %s", w.Status, w.Body.Bytes())
	}
	return a.DeviceCode
}

// benchLoop polls the pending code b.N times and reports the share of CPU
// the garbage collector took meanwhile (runtime/metrics), next to ns/op.
func benchLoop(b *testing.B, h http.Handler, offset *atomic.Int64, dc string) {
	b.Helper()
	body := []byte(url.Values{"grant_type": {httpapi.GrantTypeDeviceCode}, "client_id": {"tv"}, "device_code": {dc}}.Encode())
	samples := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}}
	runtime.GC()
	metrics.Read(samples)
	gc0, all0 := samples[0].Value.Float64(), samples[1].Value.Float64()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		offset.Add(int64(time.Second))
		w := httpapitest.NewNopWriter(false)
		h.ServeHTTP(w, benchPostForm("/api/token", body))
		if w.Status != http.StatusBadRequest {
			b.Fatalf("poll answered %d", w.Status)
		}
	}
	b.StopTimer()
	metrics.Read(samples)
	if d := samples[1].Value.Float64() - all0; d > 0 {
		b.ReportMetric(100*(samples[0].Value.Float64()-gc0)/d, "gc-cpu-%")
	}
}

// BenchmarkPendingPoll is one pending poll through the router;
// BenchmarkPendingPoll/request is building the request and writer alone.
func BenchmarkPendingPoll(b *testing.B) {
	b.Run("router", func(b *testing.B) {
		h, offset := benchPollRouter(b, memory.New(time.Now))
		benchLoop(b, h, offset, benchDeviceCode(b, h))
	})
	b.Run("request", func(b *testing.B) {
		body := []byte(url.Values{"grant_type": {httpapi.GrantTypeDeviceCode}, "client_id": {"tv"}, "device_code": {strings.Repeat("x", 43)}}.Encode())
		b.ReportAllocs()
		for b.Loop() {
			w := httpapitest.NewNopWriter(false)
			_ = benchPostForm("/api/token", body)
			w.WriteHeader(http.StatusBadRequest)
		}
	})
}

// BenchmarkPendingPollLive is the same poll with n other live flows in the
// memory store: the goal is a flat line from 10 to 100k (issue 22), which
// depends on how much of the store the garbage collector has to scan.
func BenchmarkPendingPollLive(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run("flows="+strconv.Itoa(n), func(b *testing.B) {
			st := memory.New(time.Now)
			fillLive(b, st, n)
			h, offset := benchPollRouter(b, st)
			benchLoop(b, h, offset, benchDeviceCode(b, h))
			runtime.KeepAlive(st)
		})
	}
}

// fillLive creates n pending records shaped as the service writes them.
func fillLive(b *testing.B, st store.Store, n int) {
	b.Helper()
	created := time.Now()
	buf := make([]byte, 64)
	for range n {
		_, _ = rand.Read(buf)
		r := &store.Record{
			ID:           base64.RawURLEncoding.EncodeToString(buf[:32])[:43] + strings.Repeat("0", 21),
			UserCodeHash: base64.RawURLEncoding.EncodeToString(buf[32:])[:43] + strings.Repeat("0", 21),
			ClientID:     "tv", Scopes: []string{"streaming"}, Status: store.StatusPending,
			CreatedAt: created, ExpiresAt: created.Add(time.Hour), Interval: 5,
		}
		if err := st.Create(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}
