package httpapi_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadConcurrentFlows runs 200 complete flows at once over loopback —
// each device polling while other people approve — on every store backend,
// and checks that every flow ends with its own tokens, delivered once, with
// no 5xx. It prints what it measured; it asserts no timing.
func TestLoadConcurrentFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	for name, open := range storeBackends() {
		t.Run(name, func(t *testing.T) {
			// A generous upstream timeout: on a loaded 2-core machine
			// under -race the fake provider can be slow, and a timed-out
			// exchange is correct behaviour, not what this test measures.
			loadFlows(t, newHarness(t, open(t), withUpstreamTimeout(20*time.Second)), 200)
		})
	}
}

// loadFlows runs the given number of complete flows on h at once.
func loadFlows(t *testing.T, h *harness, flows int) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		fiveXX    int
		tokens    = map[string]int{}
		failures  []string
	)
	record := func(start time.Time, status int) {
		mu.Lock()
		defer mu.Unlock()
		latencies = append(latencies, time.Since(start))
		if status >= 500 {
			fiveXX++
		}
	}
	fail := func(format string) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, format)
	}
	begin := time.Now()
	var wg sync.WaitGroup
	for range flows {
		wg.Go(func() {
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			send := func(c *http.Client, method, path string, form url.Values, origin bool) *response {
				var req *http.Request
				if form != nil {
					req, _ = http.NewRequest(method, h.srv.URL+path, strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					if origin {
						req.Header.Set("Origin", h.srv.URL)
					}
				} else {
					req, _ = http.NewRequest(method, h.srv.URL+path, nil)
				}
				start := time.Now()
				res := h.do(req, c)
				record(start, res.StatusCode)
				return res
			}
			res := send(nil, "POST", "/api/authorize", url.Values{"client_id": {"tv"}}, false)
			if res.StatusCode != 200 {
				fail("authorize " + res.Status)
				return
			}
			m := res.json(t)
			dc, uc := m["device_code"].(string), m["user_code"].(string)
			poll := url.Values{"grant_type": {dcGrant}, "client_id": {"tv"}, "device_code": {dc}}
			if res := send(nil, "POST", "/api/token", poll, false); res.StatusCode != 400 {
				fail("first poll " + res.Status)
			}
			res = send(browser, "GET", "/api/verify?user_code="+url.QueryEscape(uc), nil, false)
			if res.StatusCode != 200 {
				fail("confirm " + res.Status)
				return
			}
			csrf := csrfFrom(t, res.body)
			res = send(browser, "POST", "/api/verify", url.Values{"user_code": {uc}, "csrf": {csrf}, "action": {"allow"}}, true)
			if res.StatusCode != 302 {
				fail("allow " + res.Status)
				return
			}
			loc, _ := url.Parse(res.Header.Get("Location"))
			q := loc.Query()
			code := "load-" + q.Get("state")[:12]
			h.provider.issue(code, q.Get("code_challenge"))
			if res := send(browser, "GET", "/api/callback?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), nil, false); res.StatusCode != 200 {
				fail("callback " + res.Status)
				return
			}
			// Two polls race for the tokens: exactly one may win.
			var got []string
			var pw sync.WaitGroup
			var pmu sync.Mutex
			for range 2 {
				pw.Go(func() {
					res := send(nil, "POST", "/api/token", poll, false)
					if res.StatusCode == 200 {
						pmu.Lock()
						got = append(got, res.json(t)["access_token"].(string))
						pmu.Unlock()
					}
				})
			}
			pw.Wait()
			mu.Lock()
			for _, tok := range got {
				tokens[tok]++
			}
			mu.Unlock()
			if len(got) != 1 || got[0] != "AT-"+code {
				fail("delivery: " + strings.Join(got, ","))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)

	if len(failures) > 0 {
		t.Errorf("%d failures, first: %v", len(failures), failures[0])
	}
	if fiveXX != 0 {
		t.Errorf("%d answers were 5xx", fiveXX)
	}
	if len(tokens) != flows {
		t.Errorf("%d distinct token sets delivered, want %d (lost tokens)", len(tokens), flows)
	}
	for tok, n := range tokens {
		if n != 1 {
			t.Errorf("a token was delivered %d times", n)
			_ = tok
		}
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(float64(len(latencies)-1)*p)] }
	t.Logf("load: %d flows, %d requests in %v: %.0f flows/s, %.0f req/s; latency p50 %v p99 %v max %v; 5xx %d",
		flows, len(latencies), elapsed.Round(time.Millisecond), float64(flows)/elapsed.Seconds(), float64(len(latencies))/elapsed.Seconds(),
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond), fiveXX)
}
