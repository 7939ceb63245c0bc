package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig bounds one load run in count and in time.
type loadConfig struct {
	Workers     int
	Records     int           // pending records per worker (devicegate targets)
	Warmup      time.Duration // not measured
	Duration    time.Duration // measured
	MaxRequests int           // upper bound on measured requests, all workers together
}

// server is a `bench serve` subprocess.
type server struct {
	kind      string
	addr      string
	pprofAddr string
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	done      chan error
}

// startServer starts the helper serving kind in its own process and waits
// for its READY line (at most 30 s).
func startServer(h *helper, kind, dir string) (*server, error) {
	cmd := h.command("serve", "DEVICEGATE_BENCH_KIND="+kind, "DEVICEGATE_BENCH_DIR="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{kind: kind, cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "READY" {
				s.addr, s.pprofAddr = f[1], f[2]
				ready <- nil
			} else {
				ready <- fmt.Errorf("server said %q", sc.Text())
			}
		} else {
			ready <- errors.New("server exited before it was ready")
		}
		_, _ = io.Copy(io.Discard, stdout)
		s.done <- cmd.Wait()
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.stop()
			return nil, err
		}
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, errors.New("server not ready within 30s")
	}
	return s, nil
}

// stop ends the subprocess: closing its stdin asks it to shut down; if it
// has not within 10 s it gets SIGINT, and SIGKILL 10 s after that.
func (s *server) stop() error {
	_ = s.stdin.Close()
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
		return errors.New("server did not stop within 10s of its stdin closing; interrupted")
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("server did not stop within 20s; killed")
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// newTransport keeps one keep-alive connection per worker, to loopback only.
func newTransport(workers int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("refusing to dial %s: the benchmark talks to loopback only", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        workers,
		MaxIdleConnsPerHost: workers,
		MaxConnsPerHost:     workers,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
}

// pollBody is the form a device polls the token endpoint with.
func pollBody(deviceCode string) []byte {
	return []byte(url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"client_id":   {benchClientID},
		"device_code": {deviceCode},
	}.Encode())
}

// createRecords makes workers×perWorker pending records through the real
// device authorization endpoint and returns each worker's poll bodies.
func createRecords(client *http.Client, base string, workers, perWorker int) ([][][]byte, error) {
	out := make([][][]byte, workers)
	form := []byte(url.Values{"client_id": {benchClientID}}.Encode())
	for w := range workers {
		for range perWorker {
			res, err := client.Post(base+"/api/authorize", "application/x-www-form-urlencoded", bytes.NewReader(form))
			if err != nil {
				return nil, err
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				return nil, err
			}
			if res.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("authorize: %d %s", res.StatusCode, b)
			}
			var a struct {
				DeviceCode string `json:"device_code"`
				Interval   int    `json:"interval"`
			}
			if err := json.Unmarshal(b, &a); err != nil || a.DeviceCode == "" {
				return nil, fmt.Errorf("authorize answered %s", b)
			}
			out[w] = append(out[w], pollBody(a.DeviceCode))
		}
	}
	return out, nil
}

// loadResult is one measured run.
type loadResult struct {
	Target    string
	Requests  int
	Elapsed   time.Duration
	RPS       float64
	P50, P90  time.Duration
	P99, Max  time.Duration
	Outcomes  map[string]int // answer kind → count
	Failures  int            // transport errors, 5xx, unexpected answers
	FirstFail string
	RSSIdleKB int // before the load (after setup)
	RSSMaxKB  int // highest sample during the load
	RSSHWMKB  int // VmHWM after the load
}

// classify names an answer: the OAuth error code for a devicegate poll, or
// "fixed" for the bare handler's body. ok is false for anything a healthy
// server must not answer under this load.
func classify(status int, body []byte) (string, bool) {
	if status >= 500 {
		return "http_" + strconv.Itoa(status), false
	}
	for _, code := range []string{"authorization_pending", "slow_down"} {
		if bytes.Contains(body, []byte(`"error":"`+code+`"`)) {
			return code, status == http.StatusBadRequest
		}
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error, false
	}
	return "http_" + strconv.Itoa(status), false
}

// runLoad drives url with cfg.Workers workers, each cycling through its own
// bodies, first for cfg.Warmup unmeasured, then for cfg.Duration or
// cfg.MaxRequests requests, whichever comes first. rssPID, when not zero,
// is sampled every 100 ms.
func runLoad(client *http.Client, target, u string, bodies [][][]byte, cfg loadConfig, rssPID int) (*loadResult, error) {
	res := &loadResult{Target: target, Outcomes: map[string]int{}}
	if rssPID != 0 {
		res.RSSIdleKB = readStatusKB(rssPID, "VmRSS")
	}
	perWorker := max(1, cfg.MaxRequests/cfg.Workers)
	lat := make([][]time.Duration, cfg.Workers)
	outcomes := make([]map[string]int, cfg.Workers)
	failures := make([]int, cfg.Workers)
	var firstFail atomic.Value

	phase := func(d time.Duration, measure bool) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(d)
		for w := range cfg.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if measure {
					lat[w] = make([]time.Duration, 0, min(perWorker, 1<<20))
					outcomes[w] = map[string]int{}
				}
				buf := bytes.NewBuffer(make([]byte, 0, 512))
				mine := bodies[w%len(bodies)]
				for i := 0; i < perWorker; i++ {
					t0 := time.Now()
					if !t0.Before(deadline) {
						return
					}
					req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(mine[i%len(mine)]))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r, err := client.Do(req)
					var kind string
					ok := false
					if err == nil {
						buf.Reset()
						_, err = buf.ReadFrom(r.Body)
						r.Body.Close()
					}
					if err == nil {
						kind, ok = classify(r.StatusCode, buf.Bytes())
					} else {
						kind = "transport_error"
					}
					el := time.Since(t0)
					if !measure {
						continue
					}
					lat[w] = append(lat[w], el)
					outcomes[w][kind]++
					if !ok {
						failures[w]++
						msg := kind
						if err != nil {
							msg += ": " + err.Error()
						}
						firstFail.CompareAndSwap(nil, msg)
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}

	if cfg.Warmup > 0 {
		phase(cfg.Warmup, false)
	}
	stopRSS := make(chan struct{})
	rssDone := make(chan int)
	go func() {
		peak := 0
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopRSS:
				rssDone <- peak
				return
			case <-t.C:
				if rssPID != 0 {
					peak = max(peak, readStatusKB(rssPID, "VmRSS"))
				}
			}
		}
	}()
	res.Elapsed = phase(cfg.Duration, true)
	close(stopRSS)
	res.RSSMaxKB = <-rssDone
	if rssPID != 0 {
		res.RSSHWMKB = readStatusKB(rssPID, "VmHWM")
	}

	var all []time.Duration
	for w := range cfg.Workers {
		all = append(all, lat[w]...)
		for k, v := range outcomes[w] {
			res.Outcomes[k] += v
		}
		res.Failures += failures[w]
	}
	if v := firstFail.Load(); v != nil {
		res.FirstFail = v.(string)
	}
	res.Requests = len(all)
	if res.Requests == 0 {
		return res, errors.New(target + ": no requests completed")
	}
	slices.Sort(all)
	res.RPS = float64(res.Requests) / res.Elapsed.Seconds()
	res.P50, res.P90, res.P99 = percentile(all, 0.50), percentile(all, 0.90), percentile(all, 0.99)
	res.Max = all[len(all)-1]
	return res, nil
}

// percentile of sorted, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// readStatusKB reads a "Name: N kB" line of /proc/<pid>/status; 0 if absent.
func readStatusKB(pid int, name string) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// throughputRun is the poll-path comparison of one target.
type throughputRun struct {
	Kind    string
	Result  *loadResult
	Profile string // pprof -top text, if profiled
}

// measureTarget starts a server of kind, sets up its pending records,
// measures the poll path, optionally profiles it, and stops the server.
func measureTarget(h *helper, kind, dir string, cfg loadConfig, profile time.Duration, logf func(string, ...any)) (*throughputRun, error) {
	srv, err := startServer(h, kind, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.stop()
		}
	}()
	tr := newTransport(cfg.Workers)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "http://" + srv.addr

	var bodies [][][]byte
	u := base + "/api/token"
	if kind == "bare" {
		bodies = [][][]byte{{pollBody("not-a-real-device-code-but-the-same-size-as-one-00000")}}
	} else {
		logf("  %s: creating %d×%d pending records through /api/authorize", kind, cfg.Workers, cfg.Records)
		if bodies, err = createRecords(client, base, cfg.Workers, cfg.Records); err != nil {
			return nil, fmt.Errorf("%s setup: %w", kind, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the setup's garbage settle before "idle"
	logf("  %s: %d workers, %s warm-up, %s measured (at most %d requests)", kind, cfg.Workers, cfg.Warmup, cfg.Duration, cfg.MaxRequests)
	res, err := runLoad(client, kind, u, bodies, cfg, srv.pid())
	if err != nil {
		return nil, err
	}
	run := &throughputRun{Kind: kind, Result: res}
	if res.Failures > 0 {
		return run, fmt.Errorf("%s: %d of %d answers were failures (first: %s)", kind, res.Failures, res.Requests, res.FirstFail)
	}
	if profile > 0 && kind != "bare" {
		logf("  %s: CPU profile over %s of the same load", kind, profile)
		run.Profile, err = profileUnderLoad(client, srv, u, bodies, cfg, profile)
		if err != nil {
			return run, fmt.Errorf("%s profile: %w", kind, err)
		}
	}
	stopped = true
	if err := srv.stop(); err != nil {
		return run, fmt.Errorf("%s: server exit: %w", kind, err)
	}
	return run, nil
}

// profileUnderLoad takes a CPU profile of the server while the same load
// runs, and returns `go tool pprof -top` of it (flat, then cumulative).
func profileUnderLoad(client *http.Client, srv *server, u string, bodies [][][]byte, cfg loadConfig, d time.Duration) (string, error) {
	dir, err := os.MkdirTemp("", "devicegate-bench-pprof-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := dir + "/cpu.pb.gz"
	profErr := make(chan error, 1)
	go func() {
		pc := &http.Client{Transport: newTransport(1), Timeout: d + 30*time.Second}
		res, err := pc.Get("http://" + srv.pprofAddr + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(d/time.Second)))
		if err != nil {
			profErr <- err
			return
		}
		defer res.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			profErr <- err
			return
		}
		_, err = io.Copy(f, res.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		profErr <- err
	}()
	pcfg := cfg
	pcfg.Warmup = 0
	pcfg.Duration = d + 500*time.Millisecond
	pcfg.MaxRequests = cfg.MaxRequests * 10
	lr, err := runLoad(client, "profile", u, bodies, pcfg, 0)
	if err != nil {
		return "", err
	}
	if lr.Failures > 0 {
		return "", fmt.Errorf("%d failures under profiling (first: %s)", lr.Failures, lr.FirstFail)
	}
	if err := <-profErr; err != nil {
		return "", err
	}
	var out strings.Builder
	for _, args := range [][]string{
		{"tool", "pprof", "-top", "-nodecount=25", path},
		{"tool", "pprof", "-top", "-cum", "-nodecount=150", path},
	} {
		b, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, b)
		}
		out.Write(b)
		out.WriteString("\n")
	}
	return out.String(), nil
}
