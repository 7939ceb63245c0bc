// Command bench measures devicegate: the poll path's throughput through the
// real router against a bare net/http handler, the store operations (and
// Cosmos DB request units) a complete device flow costs, the cold start of
// the release binary, the release binary on bbolt beside the in-process
// helper, memory, and microbenchmarks of the core. It writes
// docs/BENCHMARKS.md and docs/bench-throughput.svg.
//
//	go run ./bench                 # the full run (about a quarter of an hour)
//	go run ./bench -short          # seconds; prints the report, writes nothing
//
// Everything runs on loopback; every loop is bounded in count and in time;
// every process it starts is stopped before it returns. It never asserts on
// absolute times: it fails only when the benchmark itself goes wrong (a 5xx,
// an unexpected answer, a lost or repeated token, a server that does not
// start or stop).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	short         bool
	root          string
	out           string
	svg           string
	load          loadConfig
	scaleRounds   int
	targets       string
	authorize     string
	sizes         string
	profile       time.Duration
	flows         int
	polls         int
	coldstarts    int
	benchtime     string
	skip          string
	instrRequests int
	growth        growthConfig
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.BoolVar(&o.short, "short", false, "a run of a few minutes at most, for CI: small counts, no profile, report to stdout unless -out is given")
	fs.StringVar(&o.root, "root", ".", "the repository root")
	fs.StringVar(&o.out, "out", "", "where the report goes (default docs/BENCHMARKS.md; with -short, stdout); \"-\" for stdout")
	fs.StringVar(&o.svg, "svg", "", "where the throughput chart goes (default docs/bench-throughput.svg; with -short, nowhere)")
	fs.IntVar(&o.load.Connections, "connections", 32, "bombardier connections (-c)")
	fs.DurationVar(&o.load.Warmup, "warmup", time.Second, "unmeasured load per target before the rounds")
	fs.DurationVar(&o.load.Duration, "duration", 5*time.Second, "measured load per target per round")
	fs.IntVar(&o.load.Rounds, "rounds", 7, "rounds of the interleaved poll and authorize comparisons (at least 5 for the report's medians)")
	fs.IntVar(&o.scaleRounds, "scale-rounds", 5, "rounds of the interleaved scaling table")
	fs.StringVar(&o.load.ServerCPU, "server-cpu", "1", "CPU the servers are pinned to (taskset -c)")
	fs.StringVar(&o.load.ClientCPU, "client-cpu", "0", "CPU the load generator is pinned to (taskset -c)")
	fs.StringVar(&o.targets, "targets", "bare,memory,bolt,zitadel", "poll targets (bare, memory, bolt, zitadel)")
	fs.StringVar(&o.authorize, "authorize", "memory,bolt", "stores for the /api/authorize row")
	fs.StringVar(&o.sizes, "sizes", "10,1000,10000,100000", "live flows per server in the scaling table")
	fs.DurationVar(&o.profile, "profile", 5*time.Second, "CPU-profile each devicegate target for this long under the same load (0: off)")
	fs.IntVar(&o.flows, "flows", 50, "complete flows for the store-cost count")
	fs.IntVar(&o.polls, "polls", 12, "pending polls per flow (12 = one minute at the 5 s default interval)")
	fs.IntVar(&o.coldstarts, "coldstarts", 20, "cold starts of the release binary")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "-benchtime for the microbenchmarks")
	fs.IntVar(&o.instrRequests, "instr-requests", 2000, "requests per target counted under callgrind (part 1c)")
	fs.IntVar(&o.growth.Total, "growth", 100_000, "flows the release binary and the helper each create, from an empty bbolt file (part 1d)")
	fs.IntVar(&o.growth.Batch, "growth-batch", 10_000, "creates per batch of part 1d (the two targets take turns batch by batch)")
	fs.IntVar(&o.growth.Conns, "growth-conns", 64, "concurrent devices creating flows in part 1d")
	fs.IntVar(&o.growth.Rounds, "growth-rounds", 2, "fresh files grown per target in part 1d")
	fs.StringVar(&o.skip, "skip", "", "comma-separated parts to skip: throughput,callgrind,authorize,scaling,release,flows,cosmoscost,coldstart,micro (-short skips callgrind)")
	// Flags set explicitly win over -short's defaults.
	set := map[string]bool{}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.short {
		short := map[string]func(){
			"connections":   func() { o.load.Connections = 8 },
			"warmup":        func() { o.load.Warmup = time.Second },
			"duration":      func() { o.load.Duration = time.Second },
			"rounds":        func() { o.load.Rounds = 2 },
			"scale-rounds":  func() { o.scaleRounds = 1 },
			"sizes":         func() { o.sizes = "10,1000" },
			"profile":       func() { o.profile = 0 },
			"flows":         func() { o.flows = 5 },
			"polls":         func() { o.polls = 3 },
			"coldstarts":    func() { o.coldstarts = 3 },
			"growth":        func() { o.growth.Total = 2000 },
			"growth-batch":  func() { o.growth.Batch = 1000 },
			"growth-rounds": func() { o.growth.Rounds = 1 },
			"benchtime":     func() { o.benchtime = "2000x" },
			"out":           func() { o.out = "-" },
			"skip":          func() { o.skip = "callgrind" },
		}
		for name, f := range short {
			if !set[name] {
				f()
			}
		}
	} else {
		if o.out == "" {
			o.out = filepath.Join(o.root, "docs", "BENCHMARKS.md")
		}
		if o.svg == "" {
			o.svg = filepath.Join(o.root, "docs", "bench-throughput.svg")
		}
	}
	sizes, err := parseSizes(o.sizes)
	if err != nil {
		return err
	}
	switch {
	case o.load.Connections < 1 || o.load.Connections > 1024:
		return errors.New("-connections must be 1 to 1024")
	case o.load.Duration < time.Second || o.load.Duration > 10*time.Minute || o.load.Duration%time.Second != 0,
		o.load.Warmup != 0 && (o.load.Warmup < time.Second || o.load.Warmup%time.Second != 0):
		return errors.New("-duration must be whole seconds, 1s to 10m, and -warmup 0 or whole seconds (bombardier's unit)")
	case o.load.Rounds < 1 || o.load.Rounds > 100, o.scaleRounds < 1 || o.scaleRounds > 100:
		return errors.New("-rounds and -scale-rounds must be 1 to 100")
	case o.flows < 1 || o.flows > 10_000, o.polls < 0 || o.polls > 1000:
		return errors.New("-flows must be 1 to 10000 and -polls 0 to 1000")
	case o.coldstarts < 1 || o.coldstarts > 1000:
		return errors.New("-coldstarts must be 1 to 1000")
	case o.profile < 0 || o.profile > time.Minute:
		return errors.New("-profile must be 0 to 1m")
	case o.growth.Total < 1 || o.growth.Total > 1_000_000, o.growth.Batch < 1 || o.growth.Batch > o.growth.Total,
		o.growth.Conns < 1 || o.growth.Conns > 1024, o.growth.Rounds < 1 || o.growth.Rounds > 20:
		return errors.New("-growth must be 1 to 1000000, -growth-batch 1 to -growth, -growth-conns 1 to 1024, -growth-rounds 1 to 20")
	}
	if _, err := os.Stat(filepath.Join(o.root, "go.mod")); err != nil {
		return fmt.Errorf("-root %s is not the repository root: %w", o.root, err)
	}
	skip := map[string]bool{}
	for s := range strings.SplitSeq(o.skip, ",") {
		if s != "" {
			skip[strings.TrimSpace(s)] = true
		}
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

	rep := &report{Started: time.Now(), Machine: machineInfo(), Command: commandLine(args), Opts: o}
	var failures []error
	fail := func(err error) {
		logf("FAIL: %v", err)
		failures = append(failures, err)
	}

	tmp, err := os.MkdirTemp("", "devicegate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var h *helper
	if !skip["throughput"] || !skip["callgrind"] || !skip["authorize"] || !skip["scaling"] || !skip["release"] || !skip["flows"] {
		logf("building the in-process helper (go test -c %s)", helperPkg)
		if h, err = buildHelper(o.root, tmp); err != nil {
			return err
		}
	}
	kinds := splitList(o.targets)
	if !skip["throughput"] || !skip["callgrind"] || !skip["authorize"] || !skip["scaling"] || !skip["release"] {
		peer := (!skip["throughput"] || !skip["callgrind"]) && slices.Contains(kinds, "zitadel")
		logf("building bombardier (tools/go.mod)%s", map[bool]string{true: " and the zitadel peer (e2e/cmd/benchpeer)"}[peer])
		bomb, peerBin, err := buildTools(o.root, tmp, peer)
		if err != nil {
			return err
		}
		var clientCPU string
		o.load.ServerCPU, clientCPU, rep.Pinning = pinning(o.load.ServerCPU, o.load.ClientCPU)
		o.load.ClientCPU = clientCPU
		rep.Opts = o
		g := &bombardier{bin: bomb, cpu: clientCPU}
		dir := filepath.Join(tmp, "bolt")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		rep.BoltFS = fsType(dir)
		if !skip["throughput"] {
			logf("1. pending poll, %d interleaved rounds of %s: %s", o.load.Rounds, o.load.Duration, o.targets)
			rep.Polls, err = comparePolls(h, g, peerBin, dir, kinds, o.load, o.profile, logf)
			if err != nil {
				fail(err)
			}
			rt, rc, err := h.allocs()
			if err != nil {
				fail(err)
			} else {
				rep.RoutedAllocs, rep.ConstructAllocs = &rt, &rc
			}
		}
		if !skip["callgrind"] {
			logf("1c. instructions per request under callgrind, %d requests each", o.instrRequests)
			if rep.Instr, err = countInstructions(h, g, peerBin, dir, kinds, o.instrRequests, logf); err != nil {
				fail(fmt.Errorf("callgrind: %w", err))
			}
		}
		if !skip["authorize"] {
			logf("1a. /api/authorize, %d interleaved rounds: %s", o.load.Rounds, o.authorize)
			if rep.Authorize, err = compareAuthorize(h, g, dir, splitList(o.authorize), o.load, logf); err != nil {
				fail(err)
			}
		}
		if !skip["scaling"] {
			sc := o.load
			sc.Rounds = o.scaleRounds
			logf("1b. scaling with live flows %v, %d interleaved rounds", sizes, sc.Rounds)
			if rep.Scale, err = scaling(h, g, dir, []string{"memory", "bolt"}, sizes, sc, logf); err != nil {
				fail(err)
			}
		}
		if !skip["release"] {
			pc := o.load
			pc.Rounds = o.scaleRounds
			logf("1d. the release binary beside the helper on bbolt: %d flows from an empty file, %d at a time over %d connections, %d round(s)", o.growth.Total, o.growth.Batch, o.growth.Conns, o.growth.Rounds)
			if rep.Release, err = compareRelease(o.root, h, g, filepath.Join(tmp, "release"), o.growth, pc, logf); err != nil {
				fail(fmt.Errorf("release binary: %w", err))
			}
		}
	}
	if !skip["flows"] {
		logf("2. store cost of %d complete flows (%d pending polls each)", o.flows, o.polls)
		fr, err := h.flows(o.flows, o.polls)
		if err != nil {
			fail(err)
		}
		rep.Flows = fr
	}
	if !skip["cosmoscost"] {
		logf("2a. Cosmos DB cost per operation (go test -run '%s' %s)", cosmosCostTests, cosmosCostPkg)
		if rep.Cosmos, err = runCosmosCost(o.root); err != nil {
			fail(fmt.Errorf("cosmos cost tests: %w", err))
		}
	}
	if !skip["coldstart"] {
		logf("3. cold start ×%d", o.coldstarts)
		cr, err := coldStart(o.root, o.coldstarts)
		if err != nil {
			fail(err)
		}
		rep.Cold = cr
	}
	if !skip["micro"] {
		logf("5. microbenchmarks (-benchtime %s)", o.benchtime)
		lines, cmd, err := runMicro(o.root, o.benchtime)
		if err != nil {
			fail(err)
		}
		rep.Micro, rep.MicroCmd = lines, cmd
	}
	rep.Finished = time.Now()
	rep.Failures = failures

	md := rep.markdown()
	if o.out == "-" {
		fmt.Print(md)
	} else if err := writeGenerated(o.out, md); err != nil {
		return err
	}
	if o.svg != "" && rep.Polls != nil && len(rep.Polls.Series) > 0 {
		if err := os.WriteFile(o.svg, []byte(rep.chart()), 0o644); err != nil {
			return err
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d part(s) failed; first: %w", len(failures), failures[0])
	}
	logf("done in %s", time.Since(rep.Started).Round(time.Second))
	return nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("-sizes: %q is not 0 to 1000000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func commandLine(args []string) string {
	if len(args) == 0 {
		return "go run ./bench"
	}
	return "go run ./bench " + strings.Join(args, " ")
}
