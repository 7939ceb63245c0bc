package deviceflow_test

// The in-process half of `go run ./bench` (see bench/main.go). bench/ sits
// outside api/ and so may not import api/internal/...; it builds this test
// binary instead (go test -c) and runs TestBenchHelper in it, which wires
// the real router (httpapi.New) the way api/main.go does and then, chosen by
// DEVICEGATE_BENCH_HELPER:
//
//	serve   serves one benchmark target on loopback until stdin closes
//	flows   runs complete device flows over a counting store, prints counts
//	allocs  measures allocations of one poll through the router
//
// Without DEVICEGATE_BENCH_HELPER the test skips, so `go test ./...` only
// compiles it.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/httpapi"
	"github.com/devicegate/devicegate/api/internal/httpapi/httpapitest"
	"github.com/devicegate/devicegate/api/internal/pages"
	"github.com/devicegate/devicegate/api/internal/ratelimit"
	"github.com/devicegate/devicegate/api/internal/seal"
	"github.com/devicegate/devicegate/api/internal/serve"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/bolt"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

func TestBenchHelper(t *testing.T) {
	mode := os.Getenv("DEVICEGATE_BENCH_HELPER")
	if mode == "" {
		t.Skip("run by `go run ./bench` only (DEVICEGATE_BENCH_HELPER unset)")
	}
	var err error
	switch mode {
	case "serve":
		err = benchServe(os.Getenv("DEVICEGATE_BENCH_KIND"), os.Getenv("DEVICEGATE_BENCH_DIR"))
	case "flows":
		n, _ := strconv.Atoi(os.Getenv("DEVICEGATE_BENCH_FLOWS"))
		polls, _ := strconv.Atoi(os.Getenv("DEVICEGATE_BENCH_POLLS"))
		err = benchFlows(n, polls)
	case "allocs":
		err = benchAllocs()
	default:
		err = fmt.Errorf("unknown DEVICEGATE_BENCH_HELPER %q", mode)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// benchEmit prints one result line for bench/ to pick out of the output.
func benchEmit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Printf("BENCHJSON %s\n", b)
	return nil
}

// benchClientID is the one public device client the benchmark knows.
const benchClientID = "bench"

var benchClients = []config.Client{{ID: benchClientID, Name: "Benchmark device", DefaultScopes: []string{"streaming"}}}

func findBenchClient(id string) (*config.Client, bool) {
	for i := range benchClients {
		if benchClients[i].ID == id {
			return &benchClients[i], true
		}
	}
	return nil, false
}

// benchBare is the baseline: plain net/http doing the least a token
// endpoint must do for a pending poll — parse the form, check that a
// device_code is there — and answering with exactly the status, headers
// and body devicegate answers a pending poll with (captured from a real
// devicegate in this process, so the two cannot drift apart). No routing,
// no hashing, no store.
func benchBare() (http.Handler, error) {
	status, header, body, err := benchPendingAnswer()
	if err != nil {
		return nil, err
	}
	missing := []byte(`{"error":"invalid_request","error_description":"device_code is required"}` + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range header {
			h[k] = v
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("device_code") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(missing)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}), nil
}

// benchInProcess is devicegate over a memory store, to be called in
// process (no server, no upstream: nothing it is used for reaches one).
func benchInProcess() (http.Handler, error) {
	clock := &pollClock{step: time.Second}
	h, err := benchDevicegate(benchWiring{
		Store: memory.New(time.Now), Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PublicURL: "http://127.0.0.1:1", TokenURL: "http://127.0.0.1:1/token",
		Lifetime: pollClockLifetime, Interval: time.Second,
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// pollClock is the clock of the devicegate the poll benchmarks measure:
// real time plus one poll interval for every reading of it. The benchmark
// polls one pending code thousands of times a second, a device once per
// interval; moving the clock on by the interval at each reading makes every
// poll on time, so what is measured is the pending poll a well-behaved
// device gets (authorization_pending, LastPoll moved), not the slow_down a
// hammering client earns since the poll tolerance became a fifth of the
// interval (a 1 s tolerance had switched slow_down off at a 1 s interval).
//
// The clock moves at each reading, not at each request: a poll reads it
// inside the store's update, after reading the record, so any LastPoll it
// sees came from an earlier reading and is at least one step behind —
// whatever order concurrent polls are scheduled in. (Moving it once per
// request before the handler ran let two interleaved polls read the same
// time; the second was answered slow_down, its interval grew by 5 s, and
// every later poll was early: a fresh-clone CI run under load failed so.)
type pollClock struct {
	offset atomic.Int64 // nanoseconds ahead of real time
	step   time.Duration
}

// pollClockLifetime is the code lifetime under a pollClock: the clock runs
// one interval ahead per reading (a few per poll), so a 30-minute code
// would expire after some hundred polls; ten years outlast any benchmark
// run.
const pollClockLifetime = 10 * 365 * 24 * time.Hour

// Now moves the clock on by one step and reads it.
func (c *pollClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Add(int64(c.step))))
}

// benchPendingAnswer is devicegate's answer to a pending poll: status,
// headers (without Date and Content-Length, which net/http sets) and body.
func benchPendingAnswer() (int, http.Header, []byte, error) {
	h, err := benchInProcess()
	if err != nil {
		return 0, nil, nil, err
	}
	deviceCode, err := benchAuthorizeInProcess(h)
	if err != nil {
		return 0, nil, nil, err
	}
	rec := benchPollInProcess(h, deviceCode)
	if benchOAuthError(rec.Body.Bytes()) != "authorization_pending" {
		return 0, nil, nil, fmt.Errorf("poll in process: %d %s", rec.Code, rec.Body.Bytes())
	}
	hdr := rec.Result().Header.Clone()
	hdr.Del("Date")
	hdr.Del("Content-Length")
	return rec.Code, hdr, rec.Body.Bytes(), nil
}

// benchAuthorizeInProcess starts a flow on h, in process: its device code.
func benchAuthorizeInProcess(h http.Handler) (string, error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/authorize", strings.NewReader("client_id="+benchClientID))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	var a struct {
		DeviceCode string `json:"device_code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.DeviceCode == "" {
		return "", fmt.Errorf("authorize in process: %d %s", rec.Code, rec.Body.Bytes())
	}
	return a.DeviceCode, nil
}

// benchPollInProcess polls h once for deviceCode, in process.
func benchPollInProcess(h http.Handler, deviceCode string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/token", strings.NewReader(url.Values{
		"grant_type": {httpapi.GrantTypeDeviceCode}, "client_id": {benchClientID}, "device_code": {deviceCode}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	return rec
}

type benchWiring struct {
	Store     store.Store
	Now       func() time.Time
	Logger    *slog.Logger
	PublicURL string
	TokenURL  string // the fake upstream's token endpoint
	Lifetime  time.Duration
	Interval  time.Duration

	RateAuthorize, RateVerify ratelimit.Rule
	TrustedProxy              bool
}

// benchAuthURL is where Allow sends the person; the benchmark plays the
// provider itself (benchProvider.issue) instead of following it.
const benchAuthURL = "https://accounts.bench.test/authorize"

// benchDevicegate wires the real router as api/main.go does, over the given
// store, with a generic upstream whose token endpoint is a loopback fake.
func benchDevicegate(o benchWiring) (http.Handler, error) {
	key := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, err
	}
	hasher, err := deviceflow.NewHasher(key)
	if err != nil {
		return nil, err
	}
	sealer, err := seal.New(rand.Reader, seal.DeriveKey(key))
	if err != nil {
		return nil, err
	}
	svc, err := deviceflow.New(deviceflow.Config{
		Store: o.Store, Hasher: hasher, Sealer: sealer, Now: o.Now, Rand: rand.Reader,
		Lifetime: o.Lifetime, Interval: o.Interval,
	})
	if err != nil {
		return nil, err
	}
	preset, _ := upstream.Lookup("generic")
	preset.DisplayName = "Bench Music"
	preset.AuthURL = benchAuthURL
	preset.TokenURL = o.TokenURL
	preset.PKCE = true
	provider, err := upstream.New(upstream.Options{
		Preset: preset, ClientID: "up-client", ClientSecret: "up-secret",
		RedirectURL: o.PublicURL + "/api/callback", Timeout: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	renderer, err := pages.New()
	if err != nil {
		return nil, err
	}
	var limiter *ratelimit.Limiter
	if ctr, ok := o.Store.(store.Counter); ok {
		limiter = ratelimit.New(ctr, o.Logger)
	}
	return httpapi.New(httpapi.Options{
		Service: svc, Upstream: provider, Pages: renderer,
		Clients: findBenchClient, PublicURL: o.PublicURL,
		Logger: o.Logger, Now: o.Now, Rand: rand.Reader,
		Limiter: limiter, RateAuthorize: o.RateAuthorize, RateVerify: o.RateVerify, ProxyHops: proxyHops(o.TrustedProxy),
	})
}

// benchProvider is an OAuth 2.0 token endpoint on loopback that exchanges
// the codes it issued, checking the PKCE verifier like a real provider.
type benchProvider struct {
	srv *httptest.Server

	mu         sync.Mutex
	challenges map[string]string // code → code_challenge
}

func newBenchProvider() *benchProvider {
	p := &benchProvider{challenges: map[string]string{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serveToken))
	return p
}

func (p *benchProvider) issue(code, challenge string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.challenges[code] = challenge
}

// benchAccessToken is what the provider hands out for code; the flows check
// that the device receives exactly this.
func benchAccessToken(code string) string { return "AT-" + code }

func (p *benchProvider) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_request"}`)
		return
	}
	if id, secret, ok := r.BasicAuth(); !(ok && id == "up-client" && secret == "up-secret") &&
		!(r.PostForm.Get("client_id") == "up-client" && r.PostForm.Get("client_secret") == "up-secret") {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	code := r.PostForm.Get("code")
	p.mu.Lock()
	challenge, ok := p.challenges[code]
	delete(p.challenges, code)
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
		return
	}
	_, _ = io.WriteString(w, `{"access_token":"`+benchAccessToken(code)+`","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-`+code+`","scope":"streaming"}`)
}

// benchServe serves one target in this process: "bare", "memory" or
// "bolt" (file in dir). It prints "READY <addr> <pprof addr>" and serves
// until stdin closes or SIGINT/SIGTERM, so it cannot outlive bench/.
// devicegate's request log is formatted and written to /dev/null, as
// production writes one line per request.
func benchServe(kind, dir string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// The logger api/main.go builds (text at info, one writer as when run
	// locally), so the request log costs what it costs in production.
	logger := serve.Logger("info", "text", devnull, devnull)

	var h http.Handler
	var st store.Store
	switch kind {
	case "bare":
		if h, err = benchBare(); err != nil {
			return err
		}
	case "memory", "bolt":
		if kind == "memory" {
			st = memory.New(time.Now)
		} else {
			if dir == "" {
				return errors.New("DEVICEGATE_BENCH_DIR is required for bolt")
			}
			// No background sweeper: bench/ sweeps on demand (/bench/sweep)
			// and counts what that one sweep removed.
			if st, err = bolt.Open(filepath.Join(dir, "bench.db"), bolt.Options{Now: time.Now, Logger: logger, SweepEvery: -1}); err != nil {
				return err
			}
		}
		defer st.Close()
		if n, _ := strconv.Atoi(os.Getenv("DEVICEGATE_BENCH_PREFILL")); n > 0 {
			if err := benchFill(st, n, time.Now().Add(pollClockLifetime)); err != nil {
				return err
			}
		}
		up := newBenchProvider()
		defer up.srv.Close()
		// Rate limits are off: bench/ creates its pending records through
		// /api/authorize from one address. The token endpoint has no rate
		// limit in devicegate anyway.
		clock := &pollClock{step: time.Second}
		h, err = benchDevicegate(benchWiring{
			Store: st, Now: clock.Now, Logger: logger,
			PublicURL: "http://" + addr, TokenURL: up.srv.URL + "/token",
			Lifetime: pollClockLifetime, Interval: time.Second,
		})
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown DEVICEGATE_BENCH_KIND %q", kind)
	}

	// The server settings of api/main.go's serve.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      40 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	pmux := http.NewServeMux()
	pmux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	if sw, ok := st.(benchSweeper); ok {
		pmux.HandleFunc("/bench/sweep", func(w http.ResponseWriter, r *http.Request) {
			res, err := benchSweep(st, sw, r.URL.Query().Get("expired"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_ = json.NewEncoder(w).Encode(res)
		})
	}
	if cs, ok := st.(*bolt.Store); ok {
		// What the store has committed so far: bench/ reads it before and
		// after a batch of creates for commits and pages per create, and
		// the longest commit since the last read (the batch's, read after).
		pmux.HandleFunc("/bench/commits", func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(struct {
				bolt.CommitStats
				Longest bolt.CommitTiming
			}{cs.CommitStats(), cs.TakeLongestCommit()})
		})
	}
	psrv := &http.Server{Handler: pmux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = psrv.Serve(pln) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("READY %s %s\n", addr, pln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(stdinClosed)
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
	case <-stdinClosed:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = psrv.Shutdown(sctx)
	if serr := srv.Shutdown(sctx); err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// benchFill creates n records expiring at expires directly in the store,
// from 32 goroutines (so a group-committing store can batch them): the
// flows a server holds besides the one the benchmark polls.
func benchFill(st store.Store, n int, expires time.Time) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	created := time.Now()
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 32)
			for i := g; i < n; i += 32 {
				_, _ = rand.Read(b)
				id := base64.RawURLEncoding.EncodeToString(b[:16])
				r := &store.Record{ID: "fill-" + id, UserCodeHash: "fill-" + base64.RawURLEncoding.EncodeToString(b[16:]),
					ClientID: benchClientID, Scopes: []string{"streaming"}, Status: store.StatusPending,
					CreatedAt: created, ExpiresAt: expires, Interval: 5}
				if err := st.Create(context.Background(), r); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// benchSweeper is what the memory and bbolt stores offer the benchmark:
// a sweep on demand and the longest time a sweep has kept writers out.
type benchSweeper interface {
	Sweep(context.Context) (int, error)
	SweepPause() time.Duration
}

// benchSweepResult is what /bench/sweep answers.
type benchSweepResult struct {
	Expired, Removed int
	Took             time.Duration // the whole sweep
	Pause            time.Duration // the longest writer pause of any sweep so far
	Work             time.Duration // the same without bbolt's commit (Pause for memory)
	// bbolt: the writing slices of the last sweep, and the median and
	// 99th percentile of their holds.
	Slices   int
	P50, P99 time.Duration
}

// benchSweep adds expired records past retention (none if empty), then
// sweeps once.
func benchSweep(st store.Store, sw benchSweeper, expired string) (*benchSweepResult, error) {
	var res benchSweepResult
	if expired != "" {
		n, err := strconv.Atoi(expired)
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("expired=%q: want 0 to 1000000", expired)
		}
		if err := benchFill(st, n, time.Now().Add(-store.Retention-time.Minute)); err != nil {
			return nil, err
		}
		res.Expired = n
	}
	start := time.Now()
	removed, err := sw.Sweep(context.Background())
	if err != nil {
		return nil, err
	}
	res.Removed, res.Took, res.Pause = removed, time.Since(start), sw.SweepPause()
	// Complete: a second sweep at once finds nothing more to remove.
	if again, err := sw.Sweep(context.Background()); err != nil {
		return nil, err
	} else if again > 0 {
		return nil, fmt.Errorf("the sweep left %d expired records for the next one", again)
	}
	res.Work = res.Pause
	if w, ok := sw.(interface{ SweepWork() time.Duration }); ok {
		res.Work = w.SweepWork()
	}
	if h, ok := sw.(interface {
		SweepHolds() (int, time.Duration, time.Duration)
	}); ok {
		res.Slices, res.P50, res.P99 = h.SweepHolds()
	}
	return &res, nil
}

// benchCounts counts the store calls devicegate makes. bench/ decodes it
// (field names are the wire format) and turns it into Cosmos operations.
type benchCounts struct {
	Create        int
	Get           int
	GetByUserCode int
	Update        int // calls that wrote
	// UpdateNoWrite counts calls that wrote nothing durable: the function
	// declined, the record was not found, or the function changed only the
	// pacing figures, which the cosmos and bolt stores keep in the
	// instance (store.PacingOnly): one point read on Cosmos DB.
	UpdateNoWrite int
	// UpdateKnown counts writing updates over a record the caller had
	// just read (store.UpdateKnown): on Cosmos DB a replace without a
	// read, unless contended.
	UpdateKnown   int
	UpdateRetries int // extra runs of an update function (CAS retries)
	Delete        int
	// Incr counts rate-limit counter increments, Incr and IncrMember
	// alike (store.Counter): one patch each on Cosmos DB.
	Incr int
	Ping int
	// Refresh-token binding calls: reads (GetBinding) and writes (Put,
	// Delete, and Move, which writes one and deletes another: two).
	BindingReads, BindingWrites int
	// WrittenBytes is the JSON size of every record written (Create and
	// writing Updates), for the RU estimate.
	WrittenBytes []int
}

func (c benchCounts) sub(o benchCounts) benchCounts {
	return benchCounts{
		Create: c.Create - o.Create, Get: c.Get - o.Get, GetByUserCode: c.GetByUserCode - o.GetByUserCode,
		Update: c.Update - o.Update, UpdateNoWrite: c.UpdateNoWrite - o.UpdateNoWrite, UpdateKnown: c.UpdateKnown - o.UpdateKnown, UpdateRetries: c.UpdateRetries - o.UpdateRetries,
		Delete: c.Delete - o.Delete, Incr: c.Incr - o.Incr, Ping: c.Ping - o.Ping,
		BindingReads: c.BindingReads - o.BindingReads, BindingWrites: c.BindingWrites - o.BindingWrites,
		WrittenBytes: append([]int(nil), c.WrittenBytes[len(o.WrittenBytes):]...),
	}
}

func (c benchCounts) add(o benchCounts) benchCounts {
	return benchCounts{
		Create: c.Create + o.Create, Get: c.Get + o.Get, GetByUserCode: c.GetByUserCode + o.GetByUserCode,
		Update: c.Update + o.Update, UpdateNoWrite: c.UpdateNoWrite + o.UpdateNoWrite, UpdateKnown: c.UpdateKnown + o.UpdateKnown, UpdateRetries: c.UpdateRetries + o.UpdateRetries,
		Delete: c.Delete + o.Delete, Incr: c.Incr + o.Incr, Ping: c.Ping + o.Ping,
		BindingReads: c.BindingReads + o.BindingReads, BindingWrites: c.BindingWrites + o.BindingWrites,
		WrittenBytes: append(append([]int(nil), c.WrittenBytes...), o.WrittenBytes...),
	}
}

// countingStore is a store.Store and store.Counter that counts every call
// before passing it on.
type countingStore struct {
	inner store.Store

	mu sync.Mutex
	c  benchCounts
}

var (
	_ store.Store        = (*countingStore)(nil)
	_ store.Counter      = (*countingStore)(nil)
	_ store.KnownUpdater = (*countingStore)(nil)
)

func (s *countingStore) snapshot() benchCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	c.WrittenBytes = append([]int(nil), s.c.WrittenBytes...)
	return c
}

func (s *countingStore) count(f func(*benchCounts)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.c)
}

// recordSize is the JSON size of r, as a document store would keep it.
func recordSize(r *store.Record) int {
	b, err := json.Marshal(r)
	if err != nil {
		return 0
	}
	return len(b)
}

func (s *countingStore) Create(ctx context.Context, r *store.Record) error {
	n := recordSize(r)
	s.count(func(c *benchCounts) { c.Create++; c.WrittenBytes = append(c.WrittenBytes, n) })
	return s.inner.Create(ctx, r)
}

func (s *countingStore) Get(ctx context.Context, id string) (*store.Record, error) {
	s.count(func(c *benchCounts) { c.Get++ })
	return s.inner.Get(ctx, id)
}

func (s *countingStore) GetByUserCode(ctx context.Context, h string) (*store.Record, error) {
	s.count(func(c *benchCounts) { c.GetByUserCode++ })
	return s.inner.GetByUserCode(ctx, h)
}

// updateRuns watches an update function: how often the store ran it, and
// whether its last run changed pacing alone (which Cosmos does not write).
type updateRuns struct {
	runs   int
	pacing bool
}

func (o *updateRuns) watch(fn func(*store.Record) error) func(*store.Record) error {
	return func(r *store.Record) error {
		o.runs++
		before := r.Clone()
		err := fn(r)
		o.pacing = err == nil && store.PacingOnly(before, r)
		return err
	}
}

func (s *countingStore) Update(ctx context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
	var o updateRuns
	r, err := s.inner.Update(ctx, id, o.watch(fn))
	s.count(func(c *benchCounts) {
		c.UpdateRetries += max(0, o.runs-1)
		if err == nil && !o.pacing {
			c.Update++
			c.WrittenBytes = append(c.WrittenBytes, recordSize(r))
		} else {
			c.UpdateNoWrite++
		}
	})
	return r, err
}

func (s *countingStore) UpdateKnown(ctx context.Context, known *store.Record, fn func(*store.Record) error) (*store.Record, error) {
	var o updateRuns
	r, err := store.UpdateKnown(ctx, s.inner, known, o.watch(fn))
	s.count(func(c *benchCounts) {
		c.UpdateRetries += max(0, o.runs-1)
		switch {
		case err == nil && !o.pacing:
			c.UpdateKnown++
			c.WrittenBytes = append(c.WrittenBytes, recordSize(r))
		case err == nil:
			// Pacing only: Cosmos goes on as Update, one read.
			c.UpdateNoWrite++
		}
		// Declined over known: no operation at all (retries count any
		// rereads).
	})
	return r, err
}

func (s *countingStore) Delete(ctx context.Context, id string) error {
	s.count(func(c *benchCounts) { c.Delete++ })
	return s.inner.Delete(ctx, id)
}

func (s *countingStore) Ping(ctx context.Context) error {
	s.count(func(c *benchCounts) { c.Ping++ })
	return s.inner.Ping(ctx)
}

func (s *countingStore) Close() error { return s.inner.Close() }

func (s *countingStore) PutBinding(ctx context.Context, b *store.Binding) error {
	s.count(func(c *benchCounts) { c.BindingWrites++ })
	return s.inner.PutBinding(ctx, b)
}

func (s *countingStore) GetBinding(ctx context.Context, id string) (*store.Binding, error) {
	s.count(func(c *benchCounts) { c.BindingReads++ })
	return s.inner.GetBinding(ctx, id)
}

func (s *countingStore) MoveBinding(ctx context.Context, oldID string, b *store.Binding) error {
	s.count(func(c *benchCounts) { c.BindingWrites += 2 })
	return s.inner.MoveBinding(ctx, oldID, b)
}

func (s *countingStore) DeleteBinding(ctx context.Context, id string) error {
	s.count(func(c *benchCounts) { c.BindingWrites++ })
	return s.inner.DeleteBinding(ctx, id)
}

// EachBinding is the operator's list, never on a measured path: it is
// passed through uncounted.
func (s *countingStore) EachBinding(ctx context.Context, fn func(*store.Binding) error) error {
	return s.inner.EachBinding(ctx, fn)
}

func (s *countingStore) Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	s.count(func(c *benchCounts) { c.Incr++ })
	ctr, ok := s.inner.(store.Counter)
	if !ok {
		return 0, time.Time{}, errors.New("bench: the inner store keeps no counters")
	}
	return ctr.Incr(ctx, key, window)
}

func (s *countingStore) IncrMember(ctx context.Context, group, member string, window time.Duration) (map[string]int, time.Time, error) {
	s.count(func(c *benchCounts) { c.Incr++ })
	ctr, ok := s.inner.(store.Counter)
	if !ok {
		return nil, time.Time{}, errors.New("bench: the inner store keeps no counters")
	}
	return ctr.IncrMember(ctx, group, member, window)
}

// benchClock is settable, so a flow's polls can be spaced by the interval
// without waiting for it.
type benchClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *benchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *benchClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Step names, in flow order; bench/ prints them as they are.
var benchSteps = []string{
	"authorize (POST /api/authorize)",
	"pending poll (POST /api/token), each",
	"verify page (GET /api/verify?user_code=…)",
	"allow (POST /api/verify action=allow)",
	"callback + upstream exchange (GET /api/callback)",
	"delivering poll (POST /api/token → tokens)",
}

// benchRepeatStep is counted apart from the flow: a poll after delivery
// must get invalid_grant (tokens exactly once).
const benchRepeatStep = "(check) poll after delivery → invalid_grant"

// benchCosmosStats is what a cosmos backend's Stats() reported.
type benchCosmosStats struct {
	Reads, Writes, Deletes, Queries int
	RU                              float64
	Endpoint                        string
}

// benchFlowResult is what `flows` prints for bench/.
type benchFlowResult struct {
	Flows, Polls int
	Steps        map[string]benchCounts // summed over flows
	PerFlow      benchCounts            // summed over flows
	Uniform      bool                   // every flow made the same calls
	Interval     string
	Rules        string
	Backend      string
	Cosmos       *benchCosmosStats // measured, when the cosmos backend ran
}

// benchOpenCosmos is set by cosmos_bench_test.go (build tag cosmos) when
// that backend exists; it opens it from DEVICEGATE_TEST_COSMOS.
var benchOpenCosmos func(conn string, now func() time.Time) (st store.Store, stats func() benchCosmosStats, err error)

type flowHarness struct {
	clock    *benchClock
	store    *countingStore
	provider *benchProvider
	srv      *httptest.Server
	device   *http.Client
	interval time.Duration
}

type benchAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (h *flowHarness) do(c *http.Client, method, path string, form url.Values, ip string) (*benchAnswer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", h.srv.URL)
	}
	// Each flow comes from its own address, as behind Static Web Apps
	// (X-Forwarded-For as ip:port), so the default rate limits apply per
	// flow as they would per household.
	req.Header.Set("X-Forwarded-For", ip+":50000")
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 500 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return &benchAnswer{status: res.StatusCode, header: res.Header, body: b}, nil
}

func benchOAuthError(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error
}

// benchField finds the value of form field name on an HTML page.
func benchField(page []byte, name string) (string, error) {
	s := string(page)
	i := strings.Index(s, `name="`+name+`"`)
	if i < 0 {
		return "", fmt.Errorf("no %s field on the page", name)
	}
	j := strings.Index(s[i:], `value="`)
	if j < 0 {
		return "", fmt.Errorf("the %s field has no value", name)
	}
	rest := s[i+j+len(`value="`):]
	k := strings.IndexByte(rest, '"')
	if k < 0 {
		return "", fmt.Errorf("the %s field is cut short", name)
	}
	return rest[:k], nil
}

// runFlow takes device n through the whole flow, adding each step's store
// calls to steps.
func (h *flowHarness) runFlow(n, polls int, steps map[string]benchCounts) error {
	ip := fmt.Sprintf("198.51.%d.%d", (n/250)%250, n%250+1)
	step := func(name string, f func() error) error {
		before := h.store.snapshot()
		if err := f(); err != nil {
			return fmt.Errorf("flow %d, %s: %w", n, name, err)
		}
		steps[name] = steps[name].add(h.store.snapshot().sub(before))
		return nil
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	var g struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	err := step(benchSteps[0], func() error {
		a, err := h.do(h.device, http.MethodPost, "/api/authorize", url.Values{"client_id": {benchClientID}}, ip)
		if err != nil {
			return err
		}
		if a.status != http.StatusOK {
			return fmt.Errorf("%d %s", a.status, a.body)
		}
		return json.Unmarshal(a.body, &g)
	})
	if err != nil {
		return err
	}
	poll := func() (*benchAnswer, error) {
		return h.do(h.device, http.MethodPost, "/api/token", url.Values{
			"grant_type": {httpapi.GrantTypeDeviceCode}, "client_id": {benchClientID}, "device_code": {g.DeviceCode},
		}, ip)
	}
	for range polls {
		h.clock.Advance(h.interval)
		err := step(benchSteps[1], func() error {
			a, err := poll()
			if err != nil {
				return err
			}
			if e := benchOAuthError(a.body); e != "authorization_pending" {
				return fmt.Errorf("want authorization_pending, got %d %s", a.status, a.body)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	var csrf string
	err = step(benchSteps[2], func() error {
		a, err := h.do(browser, http.MethodGet, "/api/verify?user_code="+url.QueryEscape(g.UserCode), nil, ip)
		if err != nil {
			return err
		}
		if a.status != http.StatusOK {
			return fmt.Errorf("%d %s", a.status, a.body)
		}
		csrf, err = benchField(a.body, "csrf")
		return err
	})
	if err != nil {
		return err
	}
	var redirect url.Values
	err = step(benchSteps[3], func() error {
		a, err := h.do(browser, http.MethodPost, "/api/verify", url.Values{"user_code": {g.UserCode}, "csrf": {csrf}, "action": {"allow"}}, ip)
		if err != nil {
			return err
		}
		loc, perr := url.Parse(a.header.Get("Location"))
		if a.status != http.StatusFound || perr != nil || !strings.HasPrefix(loc.String(), benchAuthURL+"?") {
			return fmt.Errorf("want a redirect to the provider, got %d %q", a.status, a.header.Get("Location"))
		}
		redirect = loc.Query()
		return nil
	})
	if err != nil {
		return err
	}
	code := fmt.Sprintf("code-%d", n)
	h.provider.issue(code, redirect.Get("code_challenge"))
	err = step(benchSteps[4], func() error {
		a, err := h.do(browser, http.MethodGet, "/api/callback?"+url.Values{"code": {code}, "state": {redirect.Get("state")}}.Encode(), nil, ip)
		if err != nil {
			return err
		}
		if a.status != http.StatusOK {
			return fmt.Errorf("%d %s", a.status, a.body)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.clock.Advance(h.interval)
	err = step(benchSteps[5], func() error {
		a, err := poll()
		if err != nil {
			return err
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(a.body, &tok)
		if a.status != http.StatusOK || tok.AccessToken != benchAccessToken(code) {
			return fmt.Errorf("token lost: want %s, got %d %s", benchAccessToken(code), a.status, a.body)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.clock.Advance(h.interval)
	return step(benchRepeatStep, func() error {
		a, err := poll()
		if err != nil {
			return err
		}
		if e := benchOAuthError(a.body); e != "invalid_grant" {
			return fmt.Errorf("tokens handed out twice? want invalid_grant, got %d %s", a.status, a.body)
		}
		return nil
	})
}

// benchFlows runs n complete flows with polls pending polls each over a
// counting store (memory, or the cosmos backend with DEVICEGATE_TEST_COSMOS
// set) and prints the counts.
func benchFlows(n, polls int) error {
	if n < 1 || n > 10_000 || polls < 0 || polls > 1000 {
		return fmt.Errorf("flows %d, polls %d: out of range", n, polls)
	}
	clock := &benchClock{t: time.Now().Truncate(time.Second)}
	authorize, _ := ratelimit.ParseRule("30/10m") // config's defaults
	verify, _ := ratelimit.ParseRule("20/10m")
	interval := 5 * time.Second

	res := &benchFlowResult{Flows: n, Polls: polls, Steps: map[string]benchCounts{}, Uniform: true, Interval: interval.String(),
		Rules: "authorize " + authorize.String() + ", verify " + verify.String() + " per client IP (config defaults)", Backend: "memory"}
	var inner store.Store = memory.New(clock.Now)
	var stats func() benchCosmosStats
	if conn := os.Getenv("DEVICEGATE_TEST_COSMOS"); conn != "" {
		if benchOpenCosmos == nil {
			return errors.New("DEVICEGATE_TEST_COSMOS is set but this test binary has no cosmos backend (build with -tags cosmos)")
		}
		var err error
		if inner, stats, err = benchOpenCosmos(conn, clock.Now); err != nil {
			return err
		}
		res.Backend = "cosmos"
	}
	h := &flowHarness{clock: clock, store: &countingStore{inner: inner}, provider: newBenchProvider(), interval: interval,
		device: &http.Client{Timeout: 10 * time.Second}}
	defer h.provider.srv.Close()
	defer inner.Close()
	h.srv = httptest.NewUnstartedServer(nil)
	h.srv.Start()
	defer h.srv.Close()
	handler, err := benchDevicegate(benchWiring{
		Store: h.store, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PublicURL: h.srv.URL, TokenURL: h.provider.srv.URL + "/token",
		Lifetime: 10 * time.Minute, Interval: interval,
		RateAuthorize: authorize, RateVerify: verify, TrustedProxy: true,
	})
	if err != nil {
		return err
	}
	h.srv.Config.Handler = handler

	var before benchCosmosStats
	if stats != nil {
		before = stats()
	}
	var first benchCounts
	for i := range n {
		steps := map[string]benchCounts{}
		if err := h.runFlow(i, polls, steps); err != nil {
			return err
		}
		var total benchCounts
		for _, name := range benchSteps {
			total = total.add(steps[name])
		}
		a, b := total, first
		a.WrittenBytes, b.WrittenBytes = nil, nil
		if i == 0 {
			first = total
		} else if fmt.Sprint(a) != fmt.Sprint(b) {
			res.Uniform = false
		}
		res.PerFlow = res.PerFlow.add(total)
		for k, v := range steps {
			res.Steps[k] = res.Steps[k].add(v)
		}
	}
	if stats != nil {
		after := stats()
		res.Cosmos = &benchCosmosStats{Reads: after.Reads - before.Reads, Writes: after.Writes - before.Writes,
			Deletes: after.Deletes - before.Deletes, Queries: after.Queries - before.Queries, RU: after.RU - before.RU, Endpoint: after.Endpoint}
	}
	return benchEmit(res)
}

// benchAllocs measures one pending poll through the whole router (headers,
// request log, routing, form parsing, client check, hashing, the memory
// store's Update, the JSON error) with no network server around it; the
// cost of building the request is measured alone so it can be subtracted.
func benchAllocs() error {
	h, err := benchInProcess()
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/authorize", strings.NewReader("client_id="+benchClientID))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "127.0.0.1:40000"
	w := httpapitest.NewNopWriter(true)
	h.ServeHTTP(w, req)
	var a struct {
		DeviceCode string `json:"device_code"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Status != http.StatusOK {
		return fmt.Errorf("authorize in process: %d %s", w.Status, w.Body.Bytes())
	}
	body := []byte(url.Values{"grant_type": {httpapi.GrantTypeDeviceCode}, "client_id": {benchClientID}, "device_code": {a.DeviceCode}}.Encode())
	newReq := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/token", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "127.0.0.1:40000"
		return r
	}
	var bad error
	routed := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httpapitest.NewNopWriter(false)
			h.ServeHTTP(w, newReq())
			if w.Status != http.StatusBadRequest && bad == nil {
				bad = fmt.Errorf("poll in process answered %d", w.Status)
			}
		}
	})
	construct := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httpapitest.NewNopWriter(false)
			_ = newReq()
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	if bad != nil {
		return bad
	}
	type result struct {
		NsOp, AllocsOp, BytesOp int64
	}
	return benchEmit(map[string]result{
		"routed":    {routed.NsPerOp(), routed.AllocsPerOp(), routed.AllocedBytesPerOp()},
		"construct": {construct.NsPerOp(), construct.AllocsPerOp(), construct.AllocedBytesPerOp()},
	})
}

// proxyHops is the X-Forwarded-For depth for a harness behind a trusted
// proxy: one hop, as in Azure Static Web Apps.
func proxyHops(trusted bool) int {
	if trusted {
		return 1
	}
	return 0
}
