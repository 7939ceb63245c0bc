package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// loadConfig is one throughput comparison: bounded in count and in time.
type loadConfig struct {
	Connections int           // bombardier -c
	Warmup      time.Duration // unmeasured, once per target before the rounds
	Duration    time.Duration // measured, per target per round
	Rounds      int           // the targets are interleaved this many times
	ServerCPU   string        // taskset -c for servers ("" = not pinned)
	ClientCPU   string        // taskset -c for the load generator
}

// proc is a server subprocess that prints one "READY <addr> …" line and
// stops when its stdin closes.
type proc struct {
	name  string
	addr  string
	extra []string // the READY line's further fields
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// pinned wraps cmd in `taskset -c cpu` when cpu is set.
func pinned(cmd *exec.Cmd, cpu string) *exec.Cmd {
	if cpu == "" {
		return cmd
	}
	p := exec.Command("taskset", append([]string{"-c", cpu, cmd.Path}, cmd.Args[1:]...)...)
	p.Env, p.Dir = cmd.Env, cmd.Dir
	return p
}

// startProc starts cmd and waits (at most 5 min: prefilling 100k bbolt
// records takes a while) for its READY line.
func startProc(name string, cmd *exec.Cmd) (*proc, error) {
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
	p := &proc{name: name, cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "READY" {
				p.addr, p.extra = f[1], f[2:]
				ready <- nil
			} else {
				ready <- fmt.Errorf("%s said %q", name, sc.Text())
			}
		} else {
			ready <- errors.New(name + " exited before it was ready")
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.stop()
			return nil, err
		}
	case <-time.After(5 * time.Minute):
		p.stop()
		return nil, errors.New(name + " not ready within 5 min")
	}
	return p, nil
}

// stop ends the subprocess: closing its stdin asks it to shut down; if it
// has not within 10 s it gets SIGINT, and SIGKILL 10 s after that.
func (p *proc) stop() error {
	_ = p.stdin.Close()
	select {
	case err := <-p.done:
		return err
	case <-time.After(10 * time.Second):
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return errors.New(p.name + " did not stop within 10s of its stdin closing; interrupted")
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New(p.name + " did not stop within 20s; killed")
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// startHelper serves kind from the helper binary, pinned to cpu.
func startHelper(h *helper, kind, dir, cpu string, env ...string) (*proc, error) {
	cmd := h.command("serve", append([]string{"DEVICEGATE_BENCH_KIND=" + kind, "DEVICEGATE_BENCH_DIR=" + dir}, env...)...)
	return startProc(kind, pinned(cmd, cpu))
}

// loopbackClient talks to loopback only: the checks and the setup, never
// the measured load (bombardier does that).
func loopbackClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
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
		DisableCompression: true,
	}}
}

// request is what the load generator sends, over and over.
type request struct {
	URL     string
	Body    string
	Headers []string // "Key: value"
	Want    int      // the status class every answer must have (200 or 400)
}

const formType = "Content-Type: application/x-www-form-urlencoded"

// send makes one request with the Go client and returns status and body.
func send(c *http.Client, r request) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, r.URL, strings.NewReader(r.Body))
	if err != nil {
		return 0, nil, err
	}
	for _, h := range r.Headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// oauthError is the error code of a JSON answer, "" if none.
func oauthError(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error
}

// checkPending makes one poll and insists on authorization_pending: the
// load generator only sees status classes, so this is how the benchmark
// knows what the measured answers were.
func checkPending(c *http.Client, r request) error {
	status, b, err := send(c, r)
	if err != nil {
		return err
	}
	if status != http.StatusBadRequest || oauthError(b) != "authorization_pending" {
		return fmt.Errorf("a poll answered %d %.200s, want 400 authorization_pending", status, b)
	}
	return nil
}

// devicegatePoll creates one pending record through the real
// /api/authorize and returns the poll for it.
func devicegatePoll(c *http.Client, base string) (request, error) {
	status, b, err := send(c, request{URL: base + "/api/authorize", Body: url.Values{"client_id": {benchClientID}}.Encode(), Headers: []string{formType}})
	if err != nil {
		return request{}, err
	}
	var a struct {
		DeviceCode string `json:"device_code"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &a) != nil || a.DeviceCode == "" {
		return request{}, fmt.Errorf("authorize answered %d %.200s", status, b)
	}
	return request{URL: base + "/api/token", Headers: []string{formType}, Want: http.StatusBadRequest,
		Body: url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {benchClientID}, "device_code": {a.DeviceCode}}.Encode()}, nil
}

// peerPoll starts a device authorization at the peer (zitadel's example
// OP) and returns the poll for it, authenticated with HTTP Basic as its
// confidential device client requires.
func peerPoll(c *http.Client, p *proc) (request, error) {
	if len(p.extra) < 2 {
		return request{}, errors.New("the peer named no client")
	}
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(p.extra[0]+":"+p.extra[1]))
	base := "http://" + p.addr
	status, b, err := send(c, request{URL: base + "/device_authorization", Body: "scope=openid", Headers: []string{formType, auth}})
	if err != nil {
		return request{}, err
	}
	var a struct {
		DeviceCode string `json:"device_code"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &a) != nil || a.DeviceCode == "" {
		return request{}, fmt.Errorf("peer device_authorization answered %d %.200s", status, b)
	}
	return request{URL: base + "/oauth/token", Headers: []string{formType, auth}, Want: http.StatusBadRequest,
		Body: url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {a.DeviceCode}}.Encode()}, nil
}

// bareBody is what the bench polls the bare baseline with: a device code of
// the length devicegate's have.
var bareBody = url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {benchClientID},
	"device_code": {"not-a-real-device-code-but-the-same-size-as-one-0000"}}.Encode()

// loadResult is one bombardier run.
type loadResult struct {
	Requests  int
	Seconds   float64
	RPS       float64
	P50, P90  time.Duration
	P99, Max  time.Duration
	Statuses  map[string]int // "2xx" → count
	Errors    int            // bombardier's "others": timeouts, resets
	RSSMaxKB  int            // highest 100 ms sample of the server during the run
	Unpinned  bool
	Generator string
	// Proc is what the kernel counted for the server during the run
	// (procstat.go): CPU split user/kernel, read and write calls.
	Proc procSample
}

// bombardier is the pinned load generator (tools/go.mod).
type bombardier struct {
	bin string
	cpu string
}

// buildTool builds pkg of the module in dir into out.
func buildTool(root, dir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join(root, dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (in %s): %v\n%s", pkg, dir, err, b)
	}
	return nil
}

// run loads r for d with conns connections, sampling the RSS of pid.
func (g *bombardier) run(r request, conns int, d time.Duration, pid int) (*loadResult, error) {
	return g.load(r, conns, []string{"-d", d.String()}, pid)
}

// runN sends exactly n requests of r over conns connections (each waiting
// at most a minute for its answer), sampling the RSS of pid.
func (g *bombardier) runN(r request, conns, n int, pid int) (*loadResult, error) {
	return g.load(r, conns, []string{"-n", strconv.Itoa(n), "-t", "60s"}, pid)
}

func (g *bombardier) load(r request, conns int, bound []string, pid int) (*loadResult, error) {
	args := append([]string{"-c", strconv.Itoa(conns)}, bound...)
	args = append(args, "-m", http.MethodPost, "-b", r.Body, "-l", "-p", "r", "-o", "j")
	for _, h := range r.Headers {
		args = append(args, "-H", h)
	}
	args = append(args, r.URL)
	cmd := pinned(exec.Command(g.bin, args...), g.cpu)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	stop := make(chan struct{})
	peak := make(chan int)
	go func() {
		m := 0
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				peak <- m
				return
			case <-t.C:
				m = max(m, readStatusKB(pid, "VmRSS"))
			}
		}
	}()
	before := sampleProc(pid)
	out, err := cmd.Output()
	counted := sampleProc(pid).sub(before)
	close(stop)
	rss := <-peak
	if err != nil {
		return nil, fmt.Errorf("bombardier: %v: %s%.300s", err, stderr.String(), out)
	}
	var j struct {
		Result struct {
			TimeTakenSeconds       float64
			Req1xx, Req2xx, Req3xx int
			Req4xx, Req5xx, Others int
			Latency                struct {
				Max         float64
				Percentiles map[string]float64
			}
		}
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return nil, fmt.Errorf("bombardier output: %w", err)
	}
	res := j.Result
	us := func(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }
	lr := &loadResult{
		Requests: res.Req1xx + res.Req2xx + res.Req3xx + res.Req4xx + res.Req5xx + res.Others,
		Seconds:  res.TimeTakenSeconds,
		P50:      us(res.Latency.Percentiles["50"]), P90: us(res.Latency.Percentiles["90"]), P99: us(res.Latency.Percentiles["99"]),
		Max:      us(res.Latency.Max),
		Statuses: map[string]int{"1xx": res.Req1xx, "2xx": res.Req2xx, "3xx": res.Req3xx, "4xx": res.Req4xx, "5xx": res.Req5xx},
		Errors:   res.Others, RSSMaxKB: rss, Proc: counted,
	}
	if lr.Seconds > 0 {
		lr.RPS = float64(lr.Requests) / lr.Seconds
	}
	want := strconv.Itoa(r.Want/100) + "xx"
	if lr.Requests == 0 {
		return lr, errors.New("no requests completed")
	}
	if n := lr.Statuses[want]; n != lr.Requests {
		return lr, fmt.Errorf("%d of %d answers were not %s (%v, %d transport errors)", lr.Requests-n, lr.Requests, want, lr.Statuses, lr.Errors)
	}
	return lr, nil
}

// count sends exactly n requests over conns connections and insists that
// every answer had the expected status class.
func (g *bombardier) count(r request, conns, n int) error {
	args := []string{"-c", strconv.Itoa(conns), "-n", strconv.Itoa(n), "-t", "60s", "-m", http.MethodPost, "-b", r.Body, "-p", "r", "-o", "j"}
	for _, h := range r.Headers {
		args = append(args, "-H", h)
	}
	args = append(args, r.URL)
	out, err := pinned(exec.Command(g.bin, args...), g.cpu).Output()
	if err != nil {
		return fmt.Errorf("bombardier: %v", err)
	}
	var j struct {
		Result struct {
			Req1xx, Req2xx, Req3xx, Req4xx, Req5xx, Others int
		}
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return fmt.Errorf("bombardier output: %w", err)
	}
	res := j.Result
	got := map[int]int{100: res.Req1xx, 200: res.Req2xx, 300: res.Req3xx, 400: res.Req4xx, 500: res.Req5xx}[r.Want/100*100]
	if got != n {
		return fmt.Errorf("%d of %d answers had the expected status (%d transport errors)", got, n, res.Others)
	}
	return nil
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

// profileUnderLoad takes a CPU profile of a helper server while bombardier
// runs the same load, and returns `go tool pprof -top` of it (flat, then
// cumulative).
func profileUnderLoad(g *bombardier, srv *proc, r request, conns int, d time.Duration) (string, error) {
	if len(srv.extra) < 1 {
		return "", errors.New("the server has no pprof address")
	}
	dir, err := os.MkdirTemp("", "devicegate-bench-pprof-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := dir + "/cpu.pb.gz"
	profErr := make(chan error, 1)
	go func() {
		c := loopbackClient()
		c.Timeout = d + 30*time.Second
		res, err := c.Get("http://" + srv.extra[0] + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(d/time.Second)))
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
	if _, err := g.run(r, conns, d+500*time.Millisecond, srv.pid()); err != nil {
		return "", err
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
