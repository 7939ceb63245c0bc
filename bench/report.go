package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type machine struct {
	CPU, Kernel, GoVersion string
	Cores                  int
}

func machineInfo() machine {
	m := machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = runtime.GOOS + "/" + runtime.GOARCH + " " + strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(b))
	}
	return m
}

// fsType names the filesystem dir is on, from /proc/mounts (longest
// matching mount point).
func fsType(dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "unknown"
	}
	best, typ := "", "unknown"
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, typ = mp, f[2]
		}
	}
	return typ + " (" + best + ")"
}

type report struct {
	Started, Finished time.Time
	Machine           machine
	Command           string
	Opts              options
	BoltFS            string

	Pinning         string
	Polls           *pollComparison
	Authorize       []*series
	Instr           []instrResult
	Scale           []*scalePoint
	Release         *releaseResult
	RoutedAllocs    *allocResult
	ConstructAllocs *allocResult
	Flows           *flowResult
	Cosmos          *cosmosCost
	Cold            *coldResult
	Micro           []microLine
	MicroCmd        string
	Failures        []error
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mb(kb int) string {
	if kb == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

// poll returns the poll series of kind, nil if it did not run.
func (r *report) poll(kind string) *series {
	if r.Polls == nil {
		return nil
	}
	for _, s := range r.Polls.Series {
		if s.Kind == kind && len(s.Runs) > 0 {
			return s
		}
	}
	return nil
}

func fmtSpread(s spread, format string) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.Median, s.Min, s.Max)
}

func fmtDurSpread(v []float64) string {
	s := spreadOf(v)
	if s.N == 0 {
		return "–"
	}
	return ms(time.Duration(s.Median))
}

// goal is one row of the goals table.
type goal struct {
	Figure, Want string
	Got          string
	Met          bool
	Ran          bool
}

func (r *report) goals() []goal {
	gs := r.cosmosGoals()
	ratio := func(a, b string, want float64) {
		g := goal{Figure: fmt.Sprintf("%s / %s, pending poll", targetShort(a), targetShort(b)), Want: fmt.Sprintf("≥ %.2f", want)}
		if sa, sb := r.poll(a), r.poll(b); sa != nil && sb != nil {
			sp := spreadOf(ratios(sa, sb))
			// Three decimals: at two, a median just under the goal
			// would print as the goal and read "not met".
			g.Got, g.Met, g.Ran = fmtSpread(sp, "%.3f"), sp.Median >= want, true
			// Against the peer, the bare server is the ceiling: no server
			// doing a token endpoint's work can answer faster than it.
			if bare := r.poll("bare"); b != "bare" && bare != nil {
				g.Got += fmt.Sprintf("; bare net/http itself: %s", fmtSpread(spreadOf(ratios(bare, sb)), "%.3f"))
			}
		}
		gs = append(gs, g)
	}
	ratio("memory", "bare", 0.80)
	ratio("bolt", "bare", 0.70)
	ratio("memory", "zitadel", 1.6)
	ratio("bolt", "zitadel", 1.5)

	g := goal{Figure: "longest writer pause from a sweep, 100k flows (bbolt)", Want: "≤ 5 ms"}
	for _, sp := range r.Scale {
		if sp.Kind == "bolt" && sp.Flows == 100_000 {
			p := max(sp.LiveSweep.Pause, sp.ExpiredSweep.Pause)
			e := sp.ExpiredSweep
			g.Got, g.Met, g.Ran = fmt.Sprintf("%s, of which %s before the commit; %d slices of the expired sweep: median %s, p99 %s (100k live, then 100k past retention swept)",
				ms(p), ms(max(sp.LiveSweep.Work, e.Work)), e.Slices, ms(e.P50), ms(e.P99)), p <= 5*time.Millisecond, true
		}
	}
	gs = append(gs, g)

	g = goal{Figure: "poll throughput change from 10 to 100k flows (memory)", Want: "≥ −10%"}
	var lo, hi *series
	for _, sp := range r.Scale {
		if sp.Kind == "memory" && sp.Flows == 10 {
			lo = sp.Poll
		}
		if sp.Kind == "memory" && sp.Flows == 100_000 {
			hi = sp.Poll
		}
	}
	if lo != nil && hi != nil {
		sp := spreadOf(changes(hi, lo))
		g.Got, g.Met, g.Ran = fmtSpread(sp, "%+.0f%%"), sp.Median >= -10, true
	}
	gs = append(gs, g)
	return append(gs, r.releaseGoals()...)
}

// cosmosGoals are the two Cosmos DB rows: counts, not timings, so there is
// no spread — the cost tests assert them exactly on every run.
func (r *report) cosmosGoals() []goal {
	poll := goal{Figure: "Cosmos DB RU per pending poll (`TestCosmosCostPerPoll`, Azure's charges)", Want: "≤ 1.5"}
	flow := goal{Figure: "Cosmos DB RU per complete flow, polls excluded (`TestCosmosCostPerFlow`, Azure's charges)", Want: "≤ 40"}
	if s := r.Cosmos.step("pending poll"); s != nil {
		poll.Got, poll.Met, poll.Ran = fmt.Sprintf("%.2f (%s; a count, the same every run)", s.RU, s.ops()), s.RU <= 1.5, true
	}
	if s := r.Cosmos.step("whole flow"); s != nil {
		flow.Got, flow.Met, flow.Ran = fmt.Sprintf("%.2f (%s; a count, the same every run)", s.RU, s.ops()), s.RU <= 40, true
	}
	return []goal{poll, flow}
}

// ops names a step's operations, the kinds it has.
func (s *costStep) ops() string {
	var parts []string
	for _, k := range []struct {
		n    int
		name string
	}{{s.Reads, "read"}, {s.Creates, "create"}, {s.Replaces, "replace"}, {s.Patches, "patch"}, {s.Upserts, "upsert"}, {s.Deletes, "delete"}} {
		if k.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", k.n, k.name))
		}
	}
	return strings.Join(parts, ", ")
}

// changes is a's throughput against b's in percent, round by round.
func changes(a, b *series) []float64 {
	var d []float64
	for _, v := range ratios(a, b) {
		d = append(d, 100*(v-1))
	}
	return d
}

// releaseGoals are part 1d's rows; they count only at the sizes.
func (r *report) releaseGoals() []goal {
	rr := r.Release
	full := rr != nil && rr.Cfg.Total >= 100_000 && rr.Cfg.Conns == 64 && len(rr.Growth["release"]) > 0
	rate := goal{Figure: "`/api/authorize` on bbolt, answered = committed, release binary, file growing 0 → 100k flows", Want: "≥ 8000/s"}
	longest := goal{Figure: "longest `/api/authorize` answer on bbolt, 64 concurrent devices, 0 → 100k flows (release binary)", Want: "≤ 250 ms"}
	poll := goal{Figure: "bbolt poll throughput 10 → 100k flows, background sweeper on (release binary)", Want: "≥ −10%"}
	if full {
		var rates []float64
		var worst time.Duration
		for _, g := range rr.Growth["release"] {
			if g == nil || g.flows() < rr.Cfg.Total {
				continue
			}
			rates = append(rates, g.rate())
			worst = max(worst, g.longest())
		}
		if len(rates) > 0 {
			sp := spreadOf(rates)
			rate.Got, rate.Met, rate.Ran = fmtSpread(sp, "%.0f")+"/s over the rounds", sp.Median >= 8000, true
			longest.Got, longest.Met, longest.Ran = ms(worst)+" (the longest of every round)", worst <= 250*time.Millisecond, true
		}
	}
	if full && len(rr.Poll) == 2 && len(rr.Poll[1].Runs) > 0 {
		d := changes(rr.Poll[1], rr.Poll[0])
		sp := spreadOf(d)
		poll.Got, poll.Met, poll.Ran = fmtSpread(sp, "%+.0f%%")+fmt.Sprintf("; first round, right after the creates: %+.0f%%", d[0]), sp.Median >= -10, true
	}
	return []goal{rate, longest, poll}
}

func (r *report) instr(kind string) *instrResult {
	for i := range r.Instr {
		if r.Instr[i].Kind == kind {
			return &r.Instr[i]
		}
	}
	return nil
}

// instrRatios is the goals' ratios by instruction count, "" without them.
func (r *report) instrRatios() string {
	var parts []string
	for _, pr := range [][2]string{{"memory", "bare"}, {"bolt", "bare"}, {"memory", "zitadel"}, {"bolt", "zitadel"}} {
		a, b := r.instr(pr[0]), r.instr(pr[1])
		if a != nil && b != nil {
			parts = append(parts, fmt.Sprintf("%s / %s %.2f", targetShort(pr[0]), targetShort(pr[1]), b.perRequest()/a.perRequest()))
		}
	}
	return strings.Join(parts, ", ")
}

func targetShort(kind string) string {
	switch kind {
	case "bare":
		return "bare"
	case "memory":
		return "devicegate memory"
	case "bolt":
		return "devicegate bbolt"
	case "zitadel":
		return "ZITADEL OP"
	}
	return kind
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

const (
	beginMarker = "<!-- BEGIN GENERATED by `go run ./bench`: everything up to END is rewritten on each run -->"
	endMarker   = "<!-- END GENERATED -->"
)

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("%s\n\n", beginMarker)
	p("## Latest run: %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	p("| | |\n|---|---|\n")
	p("| CPU | %s |\n| Cores | %d |\n| Pinning | %s |\n| Go | %s |\n| OS | %s |\n", r.Machine.CPU, r.Machine.Cores, cmpOr(r.Pinning, "–"), r.Machine.GoVersion, r.Machine.Kernel)
	p("| Command | `%s` |\n| Took | %s |\n\n", r.Command, r.Finished.Sub(r.Started).Round(time.Second))
	if len(r.Failures) > 0 {
		p("**This run had failures:**\n\n")
		for _, f := range r.Failures {
			p("- %s\n", strings.ReplaceAll(f.Error(), "\n", " "))
		}
		p("\n")
	}

	if r.Polls != nil || len(r.Authorize) > 0 || len(r.Scale) > 0 || len(r.Instr) > 0 || r.Release != nil || r.Cosmos != nil {
		l := r.Opts.load
		p("### Goals (issue 22)\n\n")
		p("Medians over the interleaved rounds, with min–max. Machine load (1/5/15-min load average) at the start and the end of the poll comparison: %s → %s.\n\n",
			first(r.pollLoads(), 0), first(r.pollLoads(), 1))
		p("| Figure | Goal | Measured median (min–max) | |\n|---|---:|---:|---|\n")
		for _, g := range r.goals() {
			if !g.Ran {
				p("| %s | %s | not measured in this run | |\n", g.Figure, g.Want)
				continue
			}
			p("| %s | %s | %s | %s |\n", g.Figure, g.Want, g.Got, verdict(g.Met))
		}
		p("\n")
		if ir := r.instrRatios(); ir != "" {
			p("The same comparisons by instructions per request under callgrind (section 1c; the machine's load does not move these): %s.\n\n", ir)
		}
		p("### 1. Pending poll throughput\n\n")
		p("Load generator: bombardier v1.2.6 (pinned in `tools/go.mod`), %d keep-alive connections, POSTing one pending poll over and over; %s. "+
			"Each target gets %s of unmeasured load, then the targets take turns, %d rounds of %s each, the order rotated every round; "+
			"ratios are taken round by round and their median reported with min–max. "+
			"Servers run with GOMAXPROCS = the cores they are pinned to. bbolt file on %s. "+
			"Every target's answer is checked to be `400 authorization_pending` before and after the load; bombardier sees only status classes, and every one of its answers had to be 4xx with no transport error.\n\n",
			l.Connections, r.Pinning, l.Warmup, l.Rounds, l.Duration, r.BoltFS)
		if r.Polls != nil && len(r.Polls.Series) > 0 {
			bare, peer := r.poll("bare"), r.poll("zitadel")
			p("| Target | Req/s median (min–max) | p50 | p99 | ÷ bare | ÷ ZITADEL OP | RSS max |\n|---|---:|---:|---:|---:|---:|---:|\n")
			for _, s := range r.Polls.Series {
				if len(s.Runs) == 0 {
					continue
				}
				var p50 []float64
				for _, run := range s.Runs {
					p50 = append(p50, float64(run.P50))
				}
				rb, rz := "–", "–"
				if bare != nil && s != bare {
					rb = fmtSpread(spreadOf(ratios(s, bare)), "%.2f")
				}
				if peer != nil && s != peer {
					rz = fmtSpread(spreadOf(ratios(s, peer)), "%.2f")
				}
				p("| %s | %s | %s | %s | %s | %s | %s |\n", targetName(s.Kind), fmtSpread(spreadOf(s.rps()), "%.0f"), fmtDurSpread(p50), fmtDurSpread(s.p99()), rb, rz, mb(s.rssMaxKB()))
			}
			p("\nEvery round, req/s:\n\n| Round |")
			for _, s := range r.Polls.Series {
				p(" %s |", targetShort(s.Kind))
			}
			p("\n|---:|")
			for range r.Polls.Series {
				p("---:|")
			}
			p("\n")
			for i := range len(r.Polls.Series[0].Runs) {
				p("| %d |", i+1)
				for _, s := range r.Polls.Series {
					if i < len(s.Runs) {
						p(" %.0f |", s.Runs[i].RPS)
					} else {
						p(" – |")
					}
				}
				p("\n")
			}
			p("\n![Pending poll throughput, medians](bench-throughput.svg)\n\n")
			writeCostPerRequest(p, r.Polls.Series)
		}
		if r.RoutedAllocs != nil {
			ra, ca := r.RoutedAllocs, r.ConstructAllocs
			p("In process (no network server), one pending poll through the whole router with the memory store: "+
				"%d allocs, %d B, %s per request, of which building the `*http.Request` in the benchmark is %d allocs, %d B "+
				"→ **≈ %d allocs/op on the poll path** (`httpapi` handler + `deviceflow.Poll` + memory store).\n\n",
				ra.AllocsOp, ra.BytesOp, time.Duration(ra.NsOp), ca.AllocsOp, ca.BytesOp, ra.AllocsOp-ca.AllocsOp)
		}
		if r.Polls != nil {
			for _, kind := range []string{"memory", "bolt"} {
				prof := r.Polls.Profiles[kind]
				if prof == "" {
					continue
				}
				if rows := profileRows(prof); len(rows) > 0 {
					p("Where the server's CPU went under the poll load, %s store (cumulative share of all samples, from the profile below):\n\n| Part | Function | Cum. share |\n|---|---|---:|\n", kind)
					for _, r := range rows {
						p("| %s | `%s` | %s |\n", r[0], r[1], r[2])
					}
					p("\n")
				}
				p("<details><summary>CPU profile of the server under the poll load, %s store (<code>go tool pprof -top</code>, flat then cumulative)</summary>\n\n```\n%s```\n\n</details>\n\n", kind, trimProfile(prof))
			}
		}
		if len(r.Instr) > 0 {
			p("### 1c. Instructions per pending poll (callgrind)\n\n")
			p("Each target alone under `valgrind --tool=callgrind` (with `GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off`, which callgrind 3.19 needs), 300 requests of warm-up, counters zeroed, then exactly %d polls from bombardier (4 connections), and the dump's total. "+
				"User-space instructions of the server process only: the kernel's socket work, the same for every target, is not counted, so these ratios lean further from 1 than the timed ones. "+
				"A ratio here is the inverse ratio of instructions: how many of the target's requests cost what one of the other's does.\n\n", r.Instr[0].Requests)
			p("| Target | Instructions per request | bare ÷ target | ZITADEL ÷ target |\n|---|---:|---:|---:|\n")
			bare, peer := r.instr("bare"), r.instr("zitadel")
			for _, in := range r.Instr {
				rb, rz := "–", "–"
				if bare != nil && in.Kind != "bare" {
					rb = fmt.Sprintf("%.2f", bare.perRequest()/in.perRequest())
				}
				if peer != nil && in.Kind != "zitadel" {
					rz = fmt.Sprintf("%.2f", peer.perRequest()/in.perRequest())
				}
				p("| %s | %s | %s | %s |\n", targetName(in.Kind), humanNumber(in.perRequest()), rb, rz)
			}
			p("\n")
		}
		if len(r.Authorize) > 0 {
			p("### 1a. `/api/authorize`\n\n")
			p("Same generator and pinning; `POST /api/authorize` with `client_id`, %d interleaved rounds of %s, fresh servers (rate limits off, as in the poll servers). "+
				"Every answer had to be 200: each one is a new record, and on bbolt it is answered only after the transaction holding it has committed (group commit, `store/bolt` `Create`).\n\n", l.Rounds, l.Duration)
			p("| Store | Req/s median (min–max) | p50 | p99 | RSS max |\n|---|---:|---:|---:|---:|\n")
			for _, s := range r.Authorize {
				var p50 []float64
				for _, run := range s.Runs {
					p50 = append(p50, float64(run.P50))
				}
				p("| %s | %s | %s | %s | %s |\n", targetName(s.Kind), fmtSpread(spreadOf(s.rps()), "%.0f"), fmtDurSpread(p50), fmtDurSpread(s.p99()), mb(s.rssMaxKB()))
			}
			p("\n")
		}
		if len(r.Scale) > 0 {
			p("### 1b. Scaling with live flows\n\n")
			p("One server per store and size, holding that many live (pending, unexpired) flows besides the polled one, created through the store from 32 goroutines before it answers. "+
				"The sizes of one store take turns, %d rounds of %s. Then the benchmark asks each server (`/bench/sweep` on its pprof port) to sweep with only the live flows present, "+
				"then adds as many flows already past retention and sweeps again (and once more, which must find nothing). *Sweep pause* is the longest time one sweep step held the store's writer lock "+
				"(bbolt: the transaction that committed one slice, commit and fsyncs included, with the median and p99 over the slices; memory: the store's mutex) — how long any Create or durable Update could have waited.\n\n", r.Opts.scaleRounds, l.Duration)
			p("| Store | Live flows | Poll req/s median (min–max) | vs 10 flows | p99 | RSS max | Sweep pause, live only | Sweep pause, + same number expired (of it before the commit) | Whole expired sweep |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			base := map[string]*series{}
			for _, sp := range r.Scale {
				if _, ok := base[sp.Kind]; !ok {
					base[sp.Kind] = sp.Poll
				}
				vs := "–"
				if b := base[sp.Kind]; b != sp.Poll {
					var d []float64
					for _, v := range ratios(sp.Poll, b) {
						d = append(d, 100*(v-1))
					}
					vs = fmtSpread(spreadOf(d), "%+.0f%%")
				}
				p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sp.Kind, humanNumber(float64(sp.Flows)), fmtSpread(spreadOf(sp.Poll.rps()), "%.0f"), vs,
					fmtDurSpread(sp.Poll.p99()), mb(sp.Poll.rssMaxKB()), ms(sp.LiveSweep.Pause), sweepCell(sp.ExpiredSweep),
					fmt.Sprintf("%s, %d removed", ms(sp.ExpiredSweep.Took), sp.ExpiredSweep.Removed))
			}
			p("\n")
		}
	}

	if r.Release != nil {
		r.releaseSection(p)
	}

	if r.Flows != nil {
		f := r.Flows
		p("### 2. Store operations per complete flow\n\n")
		p("%d complete flows in process (real router over a counting decorator over the %s store, fake upstream on loopback, settable clock), "+
			"each: authorize, %d pending polls spaced by the %s interval, the verify page, Allow, the callback with the upstream code exchange, "+
			"the poll that delivers the token. Rate limits at the %s. Every flow got its token; a further poll got `invalid_grant`. "+
			"Counts are per flow (averages; all flows identical: %v).\n\n", f.Flows, f.Backend, f.Polls, f.Interval, f.Rules, f.Uniform)
		p("| Step | Create | Get | GetByUserCode | Update (wrote) | Update over a known read (wrote) | Update (no write) | Delete | Incr (rate limit) | Binding reads/writes | Cosmos point reads | Cosmos writes | Cosmos deletes | Cosmos queries | Est. RU |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		perFlow := func(name string, c opCounts, div int) {
			co := toCosmos(c)
			d := float64(div)
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s | %s | %s | %s | %d | %.1f |\n", name,
				num(c.Create, d), num(c.Get, d), num(c.GetByUserCode, d), num(c.Update, d), num(c.UpdateKnown, d), num(c.UpdateNoWrite, d), num(c.Delete, d), num(c.Incr, d),
				num(c.BindingReads, d), num(c.BindingWrites, d),
				num(co.Reads, d), num(co.Writes, d), num(co.Deletes, d), co.Queries, co.RU/d)
		}
		for _, name := range flowSteps {
			div := f.Flows
			if name == flowSteps[1] {
				div = f.Flows * max(1, f.Polls)
			}
			perFlow(name, f.Steps[name], div)
		}
		perFlow("**whole flow**", f.PerFlow, f.Flows)
		perFlow(repeatStep+" (not in the total)", f.Steps[repeatStep], f.Flows)
		total := toCosmos(f.PerFlow).RU / float64(f.Flows)
		pollRU := toCosmos(f.Steps[flowSteps[1]]).RU / float64(f.Flows*max(1, f.Polls))
		fixed := total - pollRU*float64(f.Polls)
		p("\nRecord sizes written (JSON, before Cosmos' own ~%d B): %s.\n\n", cosmosItemOverhead, sizeRange(f.PerFlow.WrittenBytes))
		p("**Estimated RU per flow = %.1f + %.1f × pending polls** (%.1f RU at %d polls). "+
			"The Cosmos DB free tier (%d RU/s, 25 GB) therefore carries about **%s complete flows per day** at %d polls "+
			"(%s at 0 polls, %s at 60 polls = 5 min at 5 s), if the load were spread evenly over the day; "+
			"in any one second it carries about %.0f flows starting together, or %.0f pending polls (≈ %.0f devices polling at the %s interval). "+
			"Storage is no limit: a record lives at most its lifetime plus %s and is a few hundred bytes.\n\n",
			fixed, pollRU, total, f.Polls, freeTierRUPerSecond, humanNumber(perDay(total)), f.Polls,
			humanNumber(perDay(fixed)), humanNumber(perDay(fixed+60*pollRU)), freeTierRUPerSecond/fixed, freeTierRUPerSecond/pollRU, freeTierRUPerSecond/pollRU*intervalSeconds(f.Interval), f.Interval, "15 min retention")
		if f.Cosmos != nil {
			c := f.Cosmos
			// The measured run includes the check poll after delivery.
			m, chk := toCosmos(f.PerFlow), toCosmos(f.Steps[repeatStep])
			m.Reads, m.Writes, m.Deletes = m.Reads+chk.Reads, m.Writes+chk.Writes, m.Deletes+chk.Deletes
			p("Measured by the cosmos backend's `Stats()` over the same flows (DEVICEGATE_TEST_COSMOS): %.1f point reads, %.1f writes, %.1f deletes, %.1f queries, %.1f RU per flow; "+
				"the model above counts %.1f point reads, %.1f writes, %.1f deletes with the check poll (a rate-limit window's first event creates its counter item after a patch that found none, "+
				"which the test server counts as a further write). "+
				"Against the local Cosmos-compatible test server these charges are not real Cosmos DB charges (it charges 1 RU an operation).\n\n",
				float64(c.Reads)/float64(f.Flows), float64(c.Writes)/float64(f.Flows), float64(c.Deletes)/float64(f.Flows), float64(c.Queries)/float64(f.Flows), c.RU/float64(f.Flows),
				float64(m.Reads)/float64(f.Flows), float64(m.Writes)/float64(f.Flows), float64(m.Deletes)/float64(f.Flows))
		} else {
			p("RU are estimated from the counts (see *Method* above): DEVICEGATE_TEST_COSMOS was not set or the bench was built without the cosmos backend.\n\n")
		}
	}

	if c := r.Cosmos; c != nil {
		p("### 2a. Cosmos DB operations per step (the cost tests)\n\n")
		p("`%s` against the Cosmos DB-compatible test server: the cosmos backend's own counters, step by step, which the tests assert exactly "+
			"(a change that adds an operation fails them). Est. RU at Azure's charges for items under 1 KB: %.2f a point read, %.2f a write "+
			"(create, replace, patch, upsert, delete; see *Method*). Every item of a flow is under 1 KB with Cosmos DB's own properties.\n\n",
			c.Cmd, ruRead[0], ruWrite[0])
		p("| Step | Point reads | Creates | Replaces | Patches | Upserts | Deletes | Operations | Est. RU |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range c.Steps {
			name := s.Step
			if name == "whole flow" {
				name = "**whole flow, polls excluded**"
			}
			p("| %s | %d | %d | %d | %d | %d | %d | %d | %.2f |\n", name, s.Reads, s.Creates, s.Replaces, s.Patches, s.Upserts, s.Deletes, s.Ops, s.RU)
		}
		p("\n")
	}

	if r.Cold != nil {
		c := r.Cold
		p("### 3. Cold start\n\n")
		p("`%s`, then %d × `%s`, timed from exec to the first 200 on `/api/health` (polled every 0.2 ms).\n\n", c.BuildCmd, c.Runs, c.RunCmd)
		p("| Binary size | Median | p90 | min | max | RSS after start |\n|---:|---:|---:|---:|---:|---:|\n")
		p("| %.1f MB | %s | %s | %s | %s | %s |\n\n", float64(c.BinaryBytes)/(1<<20), ms(c.Median), ms(c.P90), ms(c.Min), ms(c.Max), mb(c.RSSIdleKB))
		p("- Goal cold start < 50 ms (median): %s\n\n", verdict(c.Median < 50*time.Millisecond))
	}

	if r.Polls != nil {
		p("### 4. Memory (VmRSS of the server process)\n\n")
		p("Highest 100 ms sample during the measured poll rounds (one pending record polled; see 1b for RSS with live flows).\n\n| Target | RSS max |\n|---|---:|\n")
		for _, s := range r.Polls.Series {
			p("| %s | %s |\n", targetName(s.Kind), mb(s.rssMaxKB()))
		}
		if r.Cold != nil {
			p("| release binary `-demo`, memory store, just started | %s |\n", mb(r.Cold.RSSIdleKB))
		}
		p("\n")
	}

	if len(r.Micro) > 0 {
		p("### 5. Microbenchmarks\n\n`%s`\n\n", r.MicroCmd)
		p("| Package | Benchmark | ns/op | B/op | allocs/op |\n|---|---|---:|---:|---:|\n")
		for _, m := range r.Micro {
			p("| %s | %s | %.1f | %d | %d |\n", m.Pkg, m.Name, m.NsOp, m.BytesOp, m.AllocsOp)
		}
		p("\n")
	}
	p("%s\n", endMarker)
	return b.String()
}

func targetName(kind string) string {
	switch kind {
	case "bare":
		return "bare net/http: parses the form, checks device_code, same answer"
	case "zitadel":
		return "ZITADEL OP (zitadel/oidc v3 example), client auth"
	case "memory":
		return "devicegate, memory store"
	case "bolt":
		return "devicegate, bbolt store"
	}
	return kind
}

func (r *report) pollLoads() []string {
	if r.Polls == nil {
		return nil
	}
	return r.Polls.Loads
}

func first(v []string, i int) string {
	if i < len(v) {
		return v[i]
	}
	return "unknown"
}

func num(n int, div float64) string {
	v := float64(n) / div
	if v == float64(int(v)) {
		return fmt.Sprint(int(v))
	}
	return fmt.Sprintf("%.2f", v)
}

func perDay(ruPerFlow float64) float64 {
	if ruPerFlow <= 0 {
		return 0
	}
	return freeTierRUPerSecond * 86400 / ruPerFlow
}

func sizeRange(sizes []int) string {
	if len(sizes) == 0 {
		return "none"
	}
	lo, hi := slices.Min(sizes), slices.Max(sizes)
	return fmt.Sprintf("%d–%d B", lo, hi)
}

// trimProfile drops pprof's header noise but keeps its summary lines.
func trimProfile(s string) string {
	var out []string
	n := 0
	for l := range strings.SplitSeq(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") {
			continue
		}
		if strings.HasPrefix(l, "Type:") {
			n = 0
		}
		if n++; n <= 50 {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (r *report) chart() string {
	colors := map[string]string{"bare": "#8a8f98", "memory": "#2f6fbf", "bolt": "#c2571a", "zitadel": "#6b8e23"}
	var bars []bar
	for _, s := range r.Polls.Series {
		sp := spreadOf(s.rps())
		bars = append(bars, bar{Label: targetShort(s.Kind), Value: sp.Median, Color: colors[s.Kind],
			Note: fmt.Sprintf("%s–%s, p99 %s", humanNumber(sp.Min), humanNumber(sp.Max), fmtDurSpread(s.p99()))})
	}
	l := r.Opts.load
	title := fmt.Sprintf("Pending poll, req/s, median of %d rounds (bombardier -c %d, pinned, %s)", l.Rounds, l.Connections, r.Started.UTC().Format("2006-01-02"))
	return barChartSVG(title, "requests per second", bars)
}

// writeGenerated puts md between the markers of path, keeping what is
// outside them (the hand-written method and findings); a file without the
// markers gets them appended.
func writeGenerated(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	var out string
	switch {
	case i >= 0 && j > i:
		out = s[:i] + md + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	case s == "":
		out = "# Benchmarks\n\n" + md
	default:
		out = s + "\n" + md
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

func intervalSeconds(s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d.Seconds()
}

// profileParts picks the lines of `pprof -top -cum` worth a row: the whole
// of devicegate's handler chain and its main parts, and the runtime and
// kernel costs around them.
var profileParts = []struct{ part, match string }{
	{"net/http serving a connection (everything)", "net/http.(*conn).serve"},
	{"system calls (read, write, fsync), flat", "internal/runtime/syscall/linux.Syscall6"},
	{"devicegate's handler chain, whole", "httpapi.(*server).headers.func"},
	{"gorilla/mux routing and below", "mux.(*Router).ServeHTTP"},
	{"token endpoint, whole", "httpapi.(*server).token"},
	{"form parsing", "httpapi.parseForm"},
	{"poll core (hash, store Update, decide)", "deviceflow.(*Service).Poll"},
	{"HMAC of the device code", "deviceflow.(*Hasher).Hash"},
	{"bbolt read transaction", "bbolt.(*DB).View"},
	{"bbolt record decode (JSON)", "bolt.decode"},
	{"bbolt write transaction commit", "bbolt.(*Tx).Commit"},
	{"fdatasync", "syscall.Fdatasync"},
	{"JSON error answer", "oauth.WriteError"},
	{"request log line", "slog.(*Logger).LogAttrs"},
	{"memory allocation", "runtime.mallocgc"},
	{"garbage collection (background mark)", "runtime.gcBgMarkWorker"},
}

func profileRows(prof string) [][3]string {
	// the cumulative listing is the second one
	parts := strings.SplitN(prof, "Type: cpu", 3)
	if len(parts) < 3 {
		return nil
	}
	cum := parts[2]
	var rows [][3]string
	for _, pp := range profileParts {
		for l := range strings.SplitSeq(cum, "\n") {
			f := strings.Fields(l)
			if len(f) < 6 || !strings.Contains(f[5], pp.match) {
				continue
			}
			share := f[4]
			if strings.HasSuffix(pp.part, ", flat") {
				share = f[1]
			}
			rows = append(rows, [3]string{pp.part, f[5], share})
			break
		}
	}
	return rows
}

// releaseSection is part 1d.
func (r *report) releaseSection(p func(string, ...any)) {
	rr := r.Release
	p("### 1d. The release binary on bbolt, beside the in-process helper\n\n")
	p("`%s` (as `scripts/release.sh` builds it, stamped `%s`), started as a user starts it: `%s`. "+
		"The in-process helper of 1a serves the same router from a test binary with the sweeper and the rate limits off. "+
		"Each round, a fresh release binary and a fresh helper each create %s flows through `POST /api/authorize` from an empty bbolt file, %s at a time "+
		"(bombardier `-n`, %d connections: as many devices asking at once), the two taking turns batch by batch; every answer had to be 200, and on bbolt each is sent only once its record is committed. "+
		"bbolt file on %s. Machine load: %s → %s.\n\n",
		rr.BuildCmd, rr.Version, rr.Env, humanNumber(float64(rr.Cfg.Total)), humanNumber(float64(rr.Cfg.Batch)), rr.Cfg.Conns, r.BoltFS, first(rr.Loads, 0), first(rr.Loads, 1))
	if len(rr.Fsync) > 0 {
		p("The disk's commit cost, for reading these figures: `fdatasync` after a 4 KiB write in the same folder, %d times:", rr.Fsync[0].N)
		for _, f := range rr.Fsync {
			p(" %s median %s (min %s, p90 %s, max %s);", f.When, ms(f.Median), ms(f.Min), ms(f.P90), ms(f.Max))
		}
		p(" a bbolt commit makes two (the pages, then the meta page).\n\n")
	}
	p("| Target | Round | Creates/s, whole growth | Batches, slowest–fastest | Longest answer | Worst batch p99 | Server CPU per create | Storage bytes per create | Write calls per create | Commits per create | Creates per commit | Pages per create |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, kind := range []string{"release", "helper"} {
		for i, g := range rr.Growth[kind] {
			if g == nil || len(g.Batches) == 0 {
				continue
			}
			var rates, p99 []float64
			for _, b := range g.Batches {
				rates = append(rates, b.Run.RPS)
				p99 = append(p99, float64(b.Run.P99))
			}
			commits, perCommit, pages := "–", "–", "–"
			if c := g.perCreate(func(b *growthBatch) uint64 { return b.Commits }); c > 0 {
				commits = fmt.Sprintf("%.3f", c)
				perCommit = fmt.Sprintf("%.1f", g.perCreate(func(b *growthBatch) uint64 { return b.Writes })/c)
				pages = fmt.Sprintf("%.2f", g.perCreate(func(b *growthBatch) uint64 { return b.Pages }))
			}
			name := "release binary"
			if kind == "helper" {
				name = "in-process helper"
			}
			p("| %s | %d | %.0f | %.0f–%.0f | %s | %s | %.0f µs | %s | %.1f | %s | %s | %s |\n", name, i+1, g.rate(), slices.Min(rates), slices.Max(rates),
				ms(g.longest()), ms(time.Duration(slices.Max(p99))),
				g.perCreate(func(b *growthBatch) uint64 { return uint64(b.CPU) })/1000,
				humanNumber(g.perCreate(func(b *growthBatch) uint64 { return b.WriteBytes })),
				g.perCreate(func(b *growthBatch) uint64 { return b.WriteCalls }), commits, perCommit, pages)
		}
	}
	p("\nCPU time, storage bytes and write calls are the server process's own, from `/proc/PID/stat` (utime + stime) and `/proc/PID/io` (`write_bytes`, `syscw`: page writes, the request log, socket writes); commits and pages from the helper's store (`bolt.CommitStats`). These counts move little with the machine's load; the rates move with it.\n\n")
	r.releaseWaits(p)
	if rel, hlp := rr.Growth["release"], rr.Growth["helper"]; len(rel) > 0 && len(hlp) > 0 && rel[0] != nil && hlp[0] != nil {
		p("Batch by batch, round 1 (creates/s, longest answer; from the helper's store: pages per create, creates per commit and the batch's longest commit; the machine's TCP retransmitted segments during each target's batch):\n\n" +
			"| Flows in the file | Release binary | Helper | Helper pages per create | Helper creates per commit | Helper longest commit | TCP retransmits, release / helper |\n|---:|---:|---:|---:|---:|---:|---:|\n")
		for i := range min(len(rel[0].Batches), len(hlp[0].Batches)) {
			a, b := rel[0].Batches[i], hlp[0].Batches[i]
			pp, per, lc := "–", "–", "–"
			if b.Pages > 0 {
				pp = fmt.Sprintf("%.2f", float64(b.Pages)/float64(b.Run.Requests))
			}
			if v, ok := b.perCommit(); ok {
				per, lc = fmt.Sprintf("%.1f", v), ms(b.Longest.Held)
			}
			p("| %s | %.0f/s, %s | %.0f/s, %s | %s | %s | %s | %d / %d |\n", humanNumber(float64(a.Flows)), a.Run.RPS, ms(a.Run.Max), b.Run.RPS, ms(b.Run.Max), pp, per, lc, a.TCP.Retrans, b.TCP.Retrans)
		}
		p("\n")
	}
	if len(rr.Poll) == 2 && len(rr.Poll[0].Runs) > 0 {
		small, big := rr.Poll[0], rr.Poll[1]
		p("Then the release binary of round 1, still holding its %s flows (sweeper on, every minute), and a fresh one holding 10 take turns at the poll load of part 1 (%d connections), "+
			"the first round right after the creates, with no warm-up. The real clock runs here, so a device polling thousands of times a second is answered `%s` — the same answer on both.\n\n",
			humanNumber(float64(rr.Cfg.Total)), r.Opts.load.Connections, rr.PollAnswer)
		p("| Round | 10 flows, req/s | %s flows, req/s | change |\n|---:|---:|---:|---:|\n", humanNumber(float64(rr.Cfg.Total)))
		d := changes(big, small)
		for i := range min(len(small.Runs), len(big.Runs)) {
			p("| %d | %.0f | %.0f | %+.0f%% |\n", i+1, small.Runs[i].RPS, big.Runs[i].RPS, d[i])
		}
		p("\n")
	}
}

// releaseWaits is part 1d's account of what the longest answers waited
// for: the helper's longest commit with its parts, how many commits held
// the writer lock long, the smallest groups, and the machine's TCP
// counters over each growth.
func (r *report) releaseWaits(p func(string, ...any)) {
	rr := r.Release
	p("What the longest answers waited for. A create is answered once the group commit holding it is on disk, so an answer waits for at most the commit before its own and its own, plus the time to reach the committer. " +
		"The helper's store times each commit from taking bbolt's writer lock to the end of its Commit (`bolt.CommitStats`): the longest, split into running the writes, bbolt's spill (nodes laid out as pages; the mmap grown when the file outgrows it) and bbolt's page and meta writes with their two `fdatasync`s (the rest is the file growth, a truncate and an fsync, which bbolt does not time); " +
		"and the commits that held the lock over 250 ms. Creates per commit in the batch where it was lowest: with 64 devices waiting, a group holds tens; near 1, each waiting create had a commit to itself. " +
		"TCP: the machine's counters during the target's batches, retransmitted segments / SYN retransmits / retransmit timeouts / connections dropped at a full listen queue (`/proc/net/snmp`, `/proc/net/netstat`; machine-wide, so anything else running moves them too): a dropped connection setup would cost its first request a 1 s retransmit.\n\n")
	p("| Target | Round | Longest answer | Helper longest commit: held (writes / spill / page writes) | its pages, creates | Commits over 250 ms | Fewest creates per commit, batch | TCP during the growth |\n|---|---:|---:|---|---:|---:|---:|---:|\n")
	for _, kind := range []string{"release", "helper"} {
		for i, g := range rr.Growth[kind] {
			if g == nil || len(g.Batches) == 0 {
				continue
			}
			name, lc, lp, over, fewest := "release binary", "–", "–", "–", "–"
			if kind == "helper" {
				name = "in-process helper"
				l := g.longestCommit()
				lc = fmt.Sprintf("%s (%s / %s / %s)", ms(l.Held), ms(l.Work), ms(l.Spill), ms(l.Write))
				lp = fmt.Sprintf("%d, %d", l.Pages, l.Writes)
				var n uint64
				low, at := math.Inf(1), 0
				for _, b := range g.Batches {
					n += b.Over[2]
					if v, ok := b.perCommit(); ok && v < low {
						low, at = v, b.Flows
					}
				}
				over = strconv.FormatUint(n, 10)
				if at > 0 {
					fewest = fmt.Sprintf("%.1f, to %s", low, humanNumber(float64(at)))
				}
			}
			p("| %s | %d | %s | %s | %s | %s | %s | %s |\n", name, i+1, ms(g.longest()), lc, lp, over, fewest, g.tcp())
		}
	}
	p("\n")
}

// sweepCell is the longest pause of a sweep (of it before the commit) and,
// for bbolt's slices, their median and p99.
func sweepCell(e *sweepResult) string {
	c := fmt.Sprintf("%s (%s)", ms(e.Pause), ms(e.Work))
	if e.Slices > 0 {
		c += fmt.Sprintf("; %d slices, median %s, p99 %s", e.Slices, ms(e.P50), ms(e.P99))
	}
	return c
}

// writeCostPerRequest prints where each poll target's CPU went per
// request — user space against the kernel — and its read and write
// calls, from /proc over every measured round. The kernel's share is the
// part callgrind (section 1c) does not count, and it is about the same
// per request for every target, which pulls timed ratios toward 1.
func writeCostPerRequest(p func(string, ...any), all []*series) {
	type row struct {
		kind string
		c    perRequest
	}
	var rows []row
	for _, s := range all {
		if c, ok := costPerRequest(s.Runs); ok {
			rows = append(rows, row{s.Kind, c})
		}
	}
	if len(rows) == 0 {
		return
	}
	p("The server's own counts per answered request over all measured rounds (`/proc/PID/stat` utime and stime, in 10 ms ticks; `/proc/PID/io` syscr and syscw): " +
		"CPU in user space (what callgrind counts) and in the kernel (socket reads and writes, the request log's write, scheduling), and read- and write-class system calls.\n\n")
	p("| Target | User CPU per request | Kernel CPU per request | Kernel share | Read calls per request | Write calls per request | Requests counted |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		total := r.c.UserUS + r.c.SysUS
		share := 0.0
		if total > 0 {
			share = 100 * r.c.SysUS / total
		}
		p("| %s | %.2f µs | %.2f µs | %.0f%% | %.2f | %.2f | %d |\n", targetName(r.kind), r.c.UserUS, r.c.SysUS, share, r.c.ReadCalls, r.c.WriteCalls, r.c.Requests)
	}
	p("\n")
}
