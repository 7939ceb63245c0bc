package deviceflow_test

import (
	"runtime"
	"sync"
	"testing"
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
	deviceCode, err := benchAuthorizeInProcess(h)
	if err != nil {
		t.Fatal(err)
	}

	const workers, polls = 8, 300
	answers := make(chan string, workers*polls)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range polls {
				answers <- benchOAuthError(benchPollInProcess(h, deviceCode).Body.Bytes())
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
