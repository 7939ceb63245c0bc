package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// target is one server under load.
type target struct {
	Kind string // bare, memory, bolt, zitadel
	srv  *proc
	req  request
}

// spread is the median of a figure over the rounds, with its range.
type spread struct {
	Median, Min, Max float64
	N                int
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// series is one target's runs, one per round.
type series struct {
	Kind string
	Runs []*loadResult
}

func (s *series) rps() []float64 {
	var v []float64
	for _, r := range s.Runs {
		v = append(v, r.RPS)
	}
	return v
}

func (s *series) p99() []float64 {
	var v []float64
	for _, r := range s.Runs {
		v = append(v, float64(r.P99))
	}
	return v
}

func (s *series) rssMaxKB() int {
	m := 0
	for _, r := range s.Runs {
		m = max(m, r.RSSMaxKB)
	}
	return m
}

// ratios divides a's runs by b's, round by round: the two ran in the same
// round, minutes apart at most, under the same machine load.
func ratios(a, b *series) []float64 {
	var v []float64
	for i := range min(len(a.Runs), len(b.Runs)) {
		if b.Runs[i].RPS > 0 {
			v = append(v, a.Runs[i].RPS/b.Runs[i].RPS)
		}
	}
	return v
}

// interleave runs every target once per round, in an order rotated each
// round, so that a slow minute of the machine hits every target alike.
// Each target gets cfg.Warmup of unmeasured load first.
func interleave(g *bombardier, targets []*target, cfg loadConfig, logf func(string, ...any)) ([]*series, error) {
	out := make([]*series, len(targets))
	for i, t := range targets {
		out[i] = &series{Kind: t.Kind}
	}
	for _, t := range targets {
		if cfg.Warmup > 0 {
			if _, err := g.run(t.req, cfg.Connections, cfg.Warmup, t.srv.pid()); err != nil {
				return out, fmt.Errorf("%s warm-up: %w", t.Kind, err)
			}
		}
	}
	for r := range cfg.Rounds {
		var line []string
		for j := range targets {
			i := (j + r) % len(targets)
			t := targets[i]
			res, err := g.run(t.req, cfg.Connections, cfg.Duration, t.srv.pid())
			if err != nil {
				return out, fmt.Errorf("%s, round %d: %w", t.Kind, r+1, err)
			}
			out[i].Runs = append(out[i].Runs, res)
			line = append(line, fmt.Sprintf("%s %.0f/s", t.Kind, res.RPS))
		}
		logf("  round %d/%d: %s (load %s)", r+1, cfg.Rounds, strings.Join(line, ", "), loadAvg())
	}
	return out, nil
}

// loadAvg is /proc/loadavg's first three fields: the machine's load while
// the benchmark ran, which the report prints beside the figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// pinning decides the cores: the server on one, the load generator on the
// other. Without taskset or a second core nothing is pinned, and the report
// says so.
func pinning(server, client string) (string, string, string) {
	if _, err := exec.LookPath("taskset"); err != nil {
		return "", "", "not pinned: taskset not found"
	}
	if runtime.NumCPU() < 2 {
		return "", "", "not pinned: one core"
	}
	return server, client, fmt.Sprintf("server on CPU %s, load generator on CPU %s (taskset)", server, client)
}

// tools builds bombardier (tools/go.mod) and, unless skipped, the peer
// (e2e/cmd/benchpeer, the e2e module) into dir.
func buildTools(root, dir string, peer bool) (bomb, peerBin string, err error) {
	bomb = filepath.Join(dir, "bombardier")
	if err := buildTool(root, "tools", "github.com/codesenberg/bombardier", bomb); err != nil {
		return "", "", err
	}
	if peer {
		peerBin = filepath.Join(dir, "benchpeer")
		if err := buildTool(root, "e2e", "./cmd/benchpeer", peerBin); err != nil {
			return "", "", err
		}
	}
	return bomb, peerBin, nil
}

// pollComparison is part 1: every target's pending poll, interleaved.
type pollComparison struct {
	Series   []*series
	Profiles map[string]string
	Loads    []string // load average before and after
}

// startTargets starts the poll targets and prepares each one's request.
func startTargets(h *helper, peerBin, dir string, kinds []string, cpu string) ([]*target, func(), error) {
	var targets []*target
	stopAll := func() {
		for _, t := range targets {
			if err := t.srv.stop(); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", t.Kind, "stop:", err)
			}
		}
	}
	c := loopbackClient()
	for _, kind := range kinds {
		var (
			p   *proc
			err error
		)
		if kind == "zitadel" {
			p, err = startProc(kind, pinned(exec.Command(peerBin), cpu))
		} else {
			p, err = startHelper(h, kind, dir, cpu)
		}
		if err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("%s: %w", kind, err)
		}
		t := &target{Kind: kind, srv: p}
		targets = append(targets, t)
		base := "http://" + p.addr
		switch kind {
		case "bare":
			t.req = request{URL: base + "/api/token", Body: bareBody, Headers: []string{formType}, Want: http.StatusBadRequest}
		case "zitadel":
			t.req, err = peerPoll(c, p)
		default:
			t.req, err = devicegatePoll(c, base)
		}
		if err == nil {
			err = checkPending(c, t.req)
		}
		if err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("%s setup: %w", kind, err)
		}
	}
	return targets, stopAll, nil
}

// comparePolls is part 1.
func comparePolls(h *helper, g *bombardier, peerBin, dir string, kinds []string, cfg loadConfig, profile time.Duration, logf func(string, ...any)) (*pollComparison, error) {
	targets, stopAll, err := startTargets(h, peerBin, dir, kinds, cfg.ServerCPU)
	if err != nil {
		return nil, err
	}
	defer stopAll()
	pc := &pollComparison{Profiles: map[string]string{}, Loads: []string{loadAvg()}}
	pc.Series, err = interleave(g, targets, cfg, logf)
	pc.Loads = append(pc.Loads, loadAvg())
	if err != nil {
		return pc, err
	}
	c := loopbackClient()
	for _, t := range targets {
		// Still pending after the load: what the load measured was the
		// pending poll all along.
		if err := checkPending(c, t.req); err != nil {
			return pc, fmt.Errorf("%s after the load: %w", t.Kind, err)
		}
		if profile > 0 && (t.Kind == "memory" || t.Kind == "bolt") {
			logf("  %s: CPU profile over %s of the same load", t.Kind, profile)
			if pc.Profiles[t.Kind], err = profileUnderLoad(g, t.srv, t.req, cfg.Connections, profile); err != nil {
				return pc, fmt.Errorf("%s profile: %w", t.Kind, err)
			}
		}
	}
	return pc, nil
}

// compareAuthorize is the /api/authorize row: each answer a new record, on
// bbolt committed to disk before it is sent.
func compareAuthorize(h *helper, g *bombardier, dir string, kinds []string, cfg loadConfig, logf func(string, ...any)) ([]*series, error) {
	var targets []*target
	defer func() {
		for _, t := range targets {
			_ = t.srv.stop()
		}
	}()
	for _, kind := range kinds {
		sub := filepath.Join(dir, "authorize-"+kind)
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, err
		}
		p, err := startHelper(h, kind, sub, cfg.ServerCPU)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		targets = append(targets, &target{Kind: kind, srv: p, req: request{
			URL: "http://" + p.addr + "/api/authorize", Body: url.Values{"client_id": {benchClientID}}.Encode(),
			Headers: []string{formType}, Want: http.StatusOK}})
	}
	return interleave(g, targets, cfg, logf)
}

// scalePoint is one store at one number of live flows.
type scalePoint struct {
	Kind  string
	Flows int
	Poll  *series
	// Sweeps: with only the live flows (nothing due), then after adding as
	// many flows already past retention.
	LiveSweep, ExpiredSweep *sweepResult
}

// sweepResult mirrors the helper's benchSweepResult.
type sweepResult struct {
	Expired, Removed  int
	Took, Pause, Work time.Duration
	Slices            int           // bbolt: the writing slices of that sweep
	P50, P99          time.Duration // and their holds' median and 99th percentile
}

// scaling is part 1b: for each store, one server per size with that many
// live flows besides the polled one, the sizes interleaved.
func scaling(h *helper, g *bombardier, dir string, kinds []string, sizes []int, cfg loadConfig, logf func(string, ...any)) ([]*scalePoint, error) {
	var all []*scalePoint
	c := loopbackClient()
	for _, kind := range kinds {
		var targets []*target
		stopAll := func() {
			for _, t := range targets {
				_ = t.srv.stop()
			}
		}
		for _, n := range sizes {
			sub := filepath.Join(dir, fmt.Sprintf("scale-%s-%d", kind, n))
			if err := os.MkdirAll(sub, 0o700); err != nil {
				stopAll()
				return all, err
			}
			logf("  %s: starting with %d live flows", kind, n)
			p, err := startHelper(h, kind, sub, cfg.ServerCPU, "DEVICEGATE_BENCH_PREFILL="+strconv.Itoa(n))
			if err != nil {
				stopAll()
				return all, fmt.Errorf("%s %d: %w", kind, n, err)
			}
			t := &target{Kind: fmt.Sprintf("%s/%d", kind, n), srv: p}
			targets = append(targets, t)
			if t.req, err = devicegatePoll(c, "http://"+p.addr); err == nil {
				err = checkPending(c, t.req)
			}
			if err != nil {
				stopAll()
				return all, fmt.Errorf("%s %d setup: %w", kind, n, err)
			}
		}
		ser, err := interleave(g, targets, cfg, logf)
		if err != nil {
			stopAll()
			return all, err
		}
		for i, n := range sizes {
			sp := &scalePoint{Kind: kind, Flows: n, Poll: ser[i]}
			pprofAddr := targets[i].srv.extra[0]
			if sp.LiveSweep, err = askSweep(c, pprofAddr, 0); err == nil {
				sp.ExpiredSweep, err = askSweep(c, pprofAddr, n)
			}
			if err != nil {
				stopAll()
				return all, fmt.Errorf("%s %d sweep: %w", kind, n, err)
			}
			logf("  %s/%d: sweep pause %s live, %s after %d expired (removed %d)", kind, n, sp.LiveSweep.Pause, sp.ExpiredSweep.Pause, n, sp.ExpiredSweep.Removed)
			// The memory store also sweeps a step in each Create, so
			// there only bbolt's count is the whole.
			if kind == "bolt" && sp.ExpiredSweep.Removed < n {
				stopAll()
				return all, fmt.Errorf("%s %d: the sweep removed %d of %d expired flows", kind, n, sp.ExpiredSweep.Removed, n)
			}
			all = append(all, sp)
		}
		stopAll()
	}
	return all, nil
}

func askSweep(c *http.Client, addr string, expired int) (*sweepResult, error) {
	u := "http://" + addr + "/bench/sweep"
	if expired > 0 {
		u += "?expired=" + strconv.Itoa(expired)
	}
	c2 := *c
	c2.Timeout = 5 * time.Minute
	res, err := c2.Get(u)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, errors.New(strings.TrimSpace(string(b)))
	}
	var r sweepResult
	return &r, json.Unmarshal(b, &r)
}
