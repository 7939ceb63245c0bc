package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Part 1d: the release binary as users run it, beside the in-process
// helper. The helper (harness_bench_test.go) wires the router the way
// api/main.go does, but it is a test binary with the sweeper off and the
// rate limits off; the release binary is built the way scripts/release.sh
// builds it and started with the environment a user gives it: bbolt on a
// file, its background sweeper on, every rate limit on (the authorize one
// set high enough for one address, the load generator's), its request log
// written to a file. Both grow a fresh file from 0 to growthConfig.Total
// flows through POST /api/authorize, batch by batch, the two taking turns;
// every answer is 200 and, on bbolt, committed before it is sent. Then the
// release binary holding those flows and a fresh one holding 10 take turns
// at the poll load, the first round right after the creates.

// growthConfig is the file-growth comparison.
type growthConfig struct {
	Total, Batch, Conns, Rounds int
}

// releaseResult is part 1d.
type releaseResult struct {
	Version, BuildCmd, Env string
	Fsync                  []*fsyncResult // before and after the part
	Cfg                    growthConfig
	Growth                 map[string][]*growthRun // "release", "helper" → one per round
	Poll                   []*series               // release with 10 flows, release with Cfg.Total
	PollAnswer             string                  // what the measured polls were answered
	Loads                  []string
}

// growthRun is one target growing one file.
type growthRun struct {
	Kind    string
	Batches []*growthBatch
}

// growthBatch is one batch of creates.
type growthBatch struct {
	Flows int // in the file after the batch
	Run   *loadResult
	// From /proc/PID/io: bytes the server sent to storage and its write
	// system calls (pwrite of pages, the request log, the socket writes).
	WriteBytes, WriteCalls uint64
	// CPU time the server spent (utime + stime of /proc/PID/stat): what a
	// create costs the machine, whatever else competes for it.
	CPU time.Duration
	// The helper's store only: what it committed during the batch, and
	// the batch's longest commit (zero for the release binary).
	commitStats
	// The machine's TCP counters over the batch (both processes and
	// anything else on the machine: they are not per process).
	TCP tcpCounts
}

func (g *growthRun) flows() int {
	if len(g.Batches) == 0 {
		return 0
	}
	return g.Batches[len(g.Batches)-1].Flows
}

// rate is creates per second over the whole growth.
func (g *growthRun) rate() float64 {
	var n, sec float64
	for _, b := range g.Batches {
		n += float64(b.Run.Requests)
		sec += b.Run.Seconds
	}
	if sec == 0 {
		return 0
	}
	return n / sec
}

// longestCommit is the helper's longest commit of the whole growth.
func (g *growthRun) longestCommit() commitTiming {
	var m commitTiming
	for _, b := range g.Batches {
		if b.Longest.Held > m.Held {
			m = b.Longest
		}
	}
	return m
}

// tcp is the machine's TCP counters over the target's batches.
func (g *growthRun) tcp() tcpCounts {
	var c tcpCounts
	for _, b := range g.Batches {
		c = c.add(b.TCP)
	}
	return c
}

// longest is the longest single answer of the whole growth.
func (g *growthRun) longest() time.Duration {
	var m time.Duration
	for _, b := range g.Batches {
		m = max(m, b.Run.Max)
	}
	return m
}

// perCreate sums f over the batches and divides by the creates.
func (g *growthRun) perCreate(f func(*growthBatch) uint64) float64 {
	var sum uint64
	for _, b := range g.Batches {
		sum += f(b)
	}
	if n := g.flows(); n > 0 {
		return float64(sum) / float64(n)
	}
	return 0
}

// releaseVersion is what the benchmark's binary is stamped with: the
// release script's default, `git describe`, marked as a benchmark build.
func releaseVersion(root string) string {
	cmd := exec.Command("git", "describe", "--tags", "--match", "v*", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	v := strings.TrimSpace(string(out))
	if err != nil || v == "" {
		v = "devel"
	}
	return v + "+bench"
}

// buildRelease builds api/ for this machine exactly as scripts/release.sh's
// gobuild does (its environment and flags), stamped with version.
func buildRelease(root, dir, version string) (bin, shown string, err error) {
	bin = filepath.Join(dir, "devicegate-release")
	ldflags := "-s -w -buildid= -X github.com/devicegate/devicegate/internal/version.stamped=" + version
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags, "-o", bin, "./api")
	cmd.Dir = root
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "GOEXPERIMENT=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "CGO_ENABLED=0", "GOAMD64=v1", "GOARM64=v8.0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build (release): %v: %s", err, b)
	}
	return bin, fmt.Sprintf(`env -u GOFLAGS -u GOEXPERIMENT CGO_ENABLED=0 GOAMD64=v1 go build -trimpath -buildvcs=false -ldflags="%s" ./api`, ldflags), nil
}

// releaseEnv is the environment the release binary runs with: what a
// user sets for a local install (README.md), a provider app that is never
// contacted (no flow here reaches the provider) and the benchmark's client.
func releaseEnv(dir, addr string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"DEVICEGATE_STORE=bolt", "DEVICEGATE_BOLT_PATH=" + filepath.Join(dir, "devicegate.db"),
		"DEVICEGATE_PUBLIC_URL=http://" + addr,
		"DEVICEGATE_UPSTREAM_CLIENT_ID=bench-app", "DEVICEGATE_UPSTREAM_CLIENT_SECRET=bench-app-secret",
		`DEVICEGATE_CLIENTS=[{"client_id":"` + benchClientID + `","name":"Benchmark device","scopes":["streaming"]}]`,
		// On, as every limit is by default, but above what one address —
		// the load generator's — sends in a run.
		"DEVICEGATE_RATE_AUTHORIZE=100000000/10m",
	}
}

// releaseEnvShown is releaseEnv for the report.
const releaseEnvShown = "DEVICEGATE_STORE=bolt DEVICEGATE_BOLT_PATH=… DEVICEGATE_PUBLIC_URL=… DEVICEGATE_UPSTREAM_CLIENT_ID=… DEVICEGATE_UPSTREAM_CLIENT_SECRET=… " +
	"DEVICEGATE_CLIENTS=[bench] DEVICEGATE_RATE_AUTHORIZE=100000000/10m (every other setting its default: sweeper every minute, every other rate limit on)"

// relProc is a running release binary.
type relProc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
	log  *os.File
}

func (p *relProc) pid() int { return p.cmd.Process.Pid }

// startRelease starts bin on a free loopback port with its data in dir,
// pinned to cpu, and waits (at most 30 s) for a 200 on /api/health.
func startRelease(bin, dir, cpu string) (*relProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "devicegate.log"))
	if err != nil {
		return nil, err
	}
	cmd := pinned(exec.Command(bin, "-addr", addr), cpu)
	cmd.Env, cmd.Dir = releaseEnv(dir, addr), dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &relProc{cmd: cmd, addr: addr, done: make(chan error, 1), log: log}
	go func() { p.done <- cmd.Wait() }()
	c := loopbackClient()
	c.Timeout = time.Second
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.Get("http://" + addr + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			_ = p.stop()
			b, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("the release binary exited: %v\n%.2000s", err, b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, errors.New("the release binary gave no 200 on /api/health within 30s")
		}
	}
}

// stop ends the release binary as a service manager would: SIGTERM, and
// SIGKILL if it has not stopped 10 s later.
func (p *relProc) stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("the release binary did not stop within 10s of SIGINT; killed")
	}
}

// commitStats mirrors bolt.CommitStats, with the longest commit since the
// last read (bolt's TakeLongestCommit), from the helper's /bench/commits:
// commits, the writes they held and the pages written; the time they held
// bbolt's writer lock, and of it bbolt's spill and page writes (fdatasync
// included); the commits that held it over 10, 50, 250 ms and 1 s.
type commitStats struct {
	Commits, Writes, Pages uint64
	Held, Spill, Write     time.Duration
	Over                   [4]uint64 // over 10 ms, 50 ms, 250 ms, 1 s (bolt.CommitBounds)
	Longest                commitTiming
}

// since is what was committed between before and c; the longest commit is
// c's, since TakeLongestCommit started over when before was read.
func (c commitStats) since(before commitStats) commitStats {
	d := commitStats{Commits: c.Commits - before.Commits, Writes: c.Writes - before.Writes, Pages: c.Pages - before.Pages,
		Held: c.Held - before.Held, Spill: c.Spill - before.Spill, Write: c.Write - before.Write, Longest: c.Longest}
	for i := range d.Over {
		d.Over[i] = c.Over[i] - before.Over[i]
	}
	return d
}

// perCommit is the writes a commit held on average, ok false with none.
func (c commitStats) perCommit() (float64, bool) {
	if c.Commits == 0 {
		return 0, false
	}
	return float64(c.Writes) / float64(c.Commits), true
}

// commitTiming mirrors bolt.CommitTiming.
type commitTiming struct {
	Held, Work, Spill, Write time.Duration
	Pages                    int64
	Writes                   int
}

// tcpCounts are the kernel's TCP counters that a dropped or delayed
// connection setup or segment would move: retransmitted segments
// (/proc/net/snmp Tcp RetransSegs), SYN retransmits, retransmit timeouts,
// and connections dropped at a full listen queue (/proc/net/netstat
// TcpExt TCPSynRetrans, TCPTimeouts, ListenOverflows, ListenDrops).
type tcpCounts struct {
	Retrans, SynRetrans, Timeouts, ListenOverflows, ListenDrops uint64
}

func (a tcpCounts) sub(b tcpCounts) tcpCounts {
	return tcpCounts{a.Retrans - b.Retrans, a.SynRetrans - b.SynRetrans, a.Timeouts - b.Timeouts, a.ListenOverflows - b.ListenOverflows, a.ListenDrops - b.ListenDrops}
}

func (a tcpCounts) add(b tcpCounts) tcpCounts {
	return tcpCounts{a.Retrans + b.Retrans, a.SynRetrans + b.SynRetrans, a.Timeouts + b.Timeouts, a.ListenOverflows + b.ListenOverflows, a.ListenDrops + b.ListenDrops}
}

func (a tcpCounts) String() string {
	return fmt.Sprintf("%d / %d / %d / %d", a.Retrans, a.SynRetrans, a.Timeouts, a.ListenOverflows+a.ListenDrops)
}

// readTCP reads tcpCounts; counters a kernel lacks stay zero.
func readTCP() tcpCounts {
	var c tcpCounts
	fields := map[string]*uint64{"Tcp:RetransSegs": &c.Retrans, "TcpExt:TCPSynRetrans": &c.SynRetrans, "TcpExt:TCPTimeouts": &c.Timeouts,
		"TcpExt:ListenOverflows": &c.ListenOverflows, "TcpExt:ListenDrops": &c.ListenDrops}
	for _, f := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// Each group is a line of names and a line of values, both
		// starting with the group's name.
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) == 0 || len(names) != len(values) || names[0] != values[0] {
				continue
			}
			for j := 1; j < len(names); j++ {
				if p, ok := fields[names[0]+names[j]]; ok {
					*p, _ = strconv.ParseUint(values[j], 10, 64)
				}
			}
		}
	}
	return c
}

func askCommits(addr string) (commitStats, error) {
	var cs commitStats
	res, err := loopbackClient().Get("http://" + addr + "/bench/commits")
	if err != nil {
		return cs, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return cs, fmt.Errorf("/bench/commits answered %d", res.StatusCode)
	}
	return cs, json.NewDecoder(res.Body).Decode(&cs)
}

// growTarget is one server being grown.
type growTarget struct {
	kind  string
	pid   int
	req   request
	stats func() (commitStats, error) // nil for the release binary
	run   *growthRun
}

// compareRelease is part 1d.
func compareRelease(root string, h *helper, g *bombardier, dir string, cfg growthConfig, poll loadConfig, logf func(string, ...any)) (*releaseResult, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	rr := &releaseResult{Version: releaseVersion(root), Env: releaseEnvShown, Cfg: cfg, Growth: map[string][]*growthRun{}, Loads: []string{loadAvg()}}
	f, err := measureFsync(dir, 200)
	if err != nil {
		return rr, err
	}
	rr.Fsync = append(rr.Fsync, f)
	logf("  fdatasync of a 4 KiB write: median %s (%s–%s)", f.Median, f.Min, f.Max)
	bin, shown, err := buildRelease(root, dir, rr.Version)
	if err != nil {
		return rr, err
	}
	rr.BuildCmd = shown
	authorize := func(base string) request {
		return request{URL: base + "/api/authorize", Body: url.Values{"client_id": {benchClientID}}.Encode(), Headers: []string{formType}, Want: http.StatusOK}
	}
	var big *relProc // the first round's release binary, kept for the polls
	defer func() {
		if big != nil {
			_ = big.stop()
		}
	}()
	for round := range cfg.Rounds {
		rel, err := startRelease(bin, filepath.Join(dir, fmt.Sprintf("release-%d", round)), poll.ServerCPU)
		if err != nil {
			return rr, err
		}
		hp, err := startHelper(h, "bolt", mkdir(filepath.Join(dir, fmt.Sprintf("helper-%d", round))), poll.ServerCPU)
		if err != nil {
			_ = rel.stop()
			return rr, err
		}
		targets := []*growTarget{
			{kind: "release", pid: rel.pid(), req: authorize("http://" + rel.addr)},
			{kind: "helper", pid: hp.pid(), req: authorize("http://" + hp.addr), stats: func() (commitStats, error) { return askCommits(hp.extra[0]) }},
		}
		err = grow(g, targets, cfg, round, logf)
		if serr := hp.stop(); err == nil {
			err = serr
		}
		if round == 0 && err == nil {
			big = rel
		} else if serr := rel.stop(); err == nil {
			err = serr
		}
		for _, t := range targets {
			rr.Growth[t.kind] = append(rr.Growth[t.kind], t.run)
		}
		if err != nil {
			return rr, err
		}
	}
	logf("  poll: release binary with 10 flows and with %d, sweeper on, %d rounds of %s", cfg.Total, poll.Rounds, poll.Duration)
	rr.Poll, rr.PollAnswer, err = releasePolls(bin, dir, big, g, poll, logf)
	rr.Loads = append(rr.Loads, loadAvg())
	if err != nil {
		return rr, err
	}
	if f, err = measureFsync(dir, 200); err != nil {
		return rr, err
	}
	rr.Fsync = append(rr.Fsync, f)
	return rr, nil
}

func mkdir(dir string) string {
	_ = os.MkdirAll(dir, 0o700)
	return dir
}

// grow creates cfg.Total flows in each target, cfg.Batch at a time over
// cfg.Conns connections, the targets taking turns batch by batch (the
// order rotated each batch).
func grow(g *bombardier, targets []*growTarget, cfg growthConfig, round int, logf func(string, ...any)) error {
	for _, t := range targets {
		t.run = &growthRun{Kind: t.kind}
	}
	for b, flows := 0, 0; flows < cfg.Total; b++ {
		n := min(cfg.Batch, cfg.Total-flows)
		flows += n
		var line []string
		for j := range targets {
			t := targets[(j+b)%len(targets)]
			before := sampleProc(t.pid)
			var cs0 commitStats
			if t.stats != nil {
				var err error
				if cs0, err = t.stats(); err != nil {
					return fmt.Errorf("%s: %w", t.kind, err)
				}
			}
			tcp0 := readTCP()
			res, err := g.runN(t.req, cfg.Conns, n, t.pid)
			if err != nil {
				return fmt.Errorf("%s growing to %d flows: %w", t.kind, flows, err)
			}
			tcp := readTCP().sub(tcp0)
			d := sampleProc(t.pid).sub(before) // a missing sample counts as zero, as it did
			gb := &growthBatch{Flows: flows, Run: res, WriteBytes: d.WriteBytes, WriteCalls: d.Writes, CPU: d.User + d.Sys, TCP: tcp}
			commits := ""
			if t.stats != nil {
				cs1, err := t.stats()
				if err != nil {
					return fmt.Errorf("%s: %w", t.kind, err)
				}
				gb.commitStats = cs1.since(cs0)
				if per, ok := gb.perCommit(); ok {
					commits = fmt.Sprintf(" (%.1f per commit, longest commit %s)", per, gb.Longest.Held.Round(time.Millisecond))
				}
			}
			t.run.Batches = append(t.run.Batches, gb)
			line = append(line, fmt.Sprintf("%s %.0f/s, longest %s%s", t.kind, res.RPS, res.Max.Round(time.Millisecond), commits))
		}
		logf("  round %d, %d flows: %s (load %s)", round+1, flows, strings.Join(line, "; "), loadAvg())
	}
	return nil
}

// releasePolls has the release binary holding the grown file (big) and a
// fresh one holding 10 flows take turns at the poll load.
func releasePolls(bin, dir string, big *relProc, g *bombardier, cfg loadConfig, logf func(string, ...any)) ([]*series, string, error) {
	if big == nil {
		return nil, "", errors.New("no grown release binary to poll")
	}
	small, err := startRelease(bin, filepath.Join(dir, "release-small"), cfg.ServerCPU)
	if err != nil {
		return nil, "", err
	}
	defer small.stop()
	c := loopbackClient()
	for range 9 { // and the polled one: 10
		if _, err := devicegatePoll(c, "http://"+small.addr); err != nil {
			return nil, "", err
		}
	}
	type tgt struct {
		p   *relProc
		req request
	}
	var ts []tgt
	for _, p := range []*relProc{small, big} {
		req, err := devicegatePoll(c, "http://"+p.addr)
		if err == nil {
			err = checkPending(c, req)
		}
		if err != nil {
			return nil, "", err
		}
		ts = append(ts, tgt{p, req})
	}
	// No warm-up: the first round is the one right after the creates.
	out := []*series{{Kind: "release/10"}, {Kind: "release/grown"}}
	for r := range cfg.Rounds {
		var line []string
		for j := range ts {
			i := (j + r) % len(ts)
			res, err := g.run(ts[i].req, cfg.Connections, cfg.Duration, ts[i].p.pid())
			if err != nil {
				return out, "", fmt.Errorf("%s, round %d: %w", out[i].Kind, r+1, err)
			}
			out[i].Runs = append(out[i].Runs, res)
			line = append(line, fmt.Sprintf("%s %.0f/s", out[i].Kind, res.RPS))
		}
		logf("  round %d/%d: %s (load %s)", r+1, cfg.Rounds, strings.Join(line, ", "), loadAvg())
	}
	// The real clock runs here: a device polling thousands of times a
	// second is told to slow down, and that answer is what was measured.
	status, b, err := send(c, ts[1].req)
	if err != nil {
		return out, "", err
	}
	ans := oauthError(b)
	if status != http.StatusBadRequest || (ans != "slow_down" && ans != "authorization_pending") {
		return out, "", fmt.Errorf("a poll after the load answered %d %.200s", status, b)
	}
	return out, ans, nil
}

// fsyncResult is the disk's fdatasync cost, measured where the files are.
type fsyncResult struct {
	N                     int
	Median, P90, Min, Max time.Duration
	When                  string
}

// measureFsync writes 4 KiB at one of 16 offsets of a fresh file in dir
// and times the fdatasync after each, n times.
func measureFsync(dir string, n int) (*fsyncResult, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	if _, err := f.Write(make([]byte, 16*len(buf))); err != nil {
		return nil, err
	}
	if err := datasync(f); err != nil {
		return nil, err
	}
	var d []time.Duration
	for i := range n {
		buf[0] = byte(i)
		if _, err := f.WriteAt(buf, int64(i%16*len(buf))); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := datasync(f); err != nil {
			return nil, err
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	return &fsyncResult{N: n, Median: percentile(d, 0.5), P90: percentile(d, 0.9), Min: d[0], Max: d[len(d)-1], When: time.Now().UTC().Format("15:04:05")}, nil
}
