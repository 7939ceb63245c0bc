package deviceflow_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/devicegate/devicegate/api/internal/httpapi"
)

// TestPollClockKeepsConcurrentPollsOnTime pins what the poll benchmarks
// rely on: however the polls of one code interleave, each is answered
// authorization_pending, never slow_down (a slow_down grows the interval
// and every later poll of the benchmark would be early). It failed when
// the clock moved once per request before the handler ran.
func TestPollClockKeepsConcurrentPollsOnTime(t *testing.T) {
	h, err := benchInProcess()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/authorize", strings.NewReader("client_id="+benchClientID))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	var a struct {
		DeviceCode string `json:"device_code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.DeviceCode == "" {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body.Bytes())
	}
	form := url.Values{"grant_type": {httpapi.GrantTypeDeviceCode}, "client_id": {benchClientID}, "device_code": {a.DeviceCode}}.Encode()

	const workers, polls = 8, 300
	answers := make(chan string, workers*polls)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range polls {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				h.ServeHTTP(rec, req)
				answers <- benchOAuthError(rec.Body.Bytes())
				runtime.Gosched() // interleave the workers' polls
			}
		}()
	}
	wg.Wait()
	close(answers)
	count := map[string]int{}
	for a := range answers {
		count[a]++
	}
	if count["authorization_pending"] != workers*polls {
		t.Fatalf("answers %v, want all %d authorization_pending", count, workers*polls)
	}
}
