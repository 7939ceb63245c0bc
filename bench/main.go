// Command bench measures devicegate: the poll path's throughput through the
// real router against a bare net/http handler, the store operations (and
// Cosmos DB request units) a complete device flow costs, the cold start of
// the release binary, memory, and microbenchmarks of the core. It writes
// docs/BENCHMARKS.md and docs/bench-throughput.svg.
//
//	go run ./bench                 # the full run (a few minutes)
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
	short      bool
	root       string
	out        string
	svg        string
	load       loadConfig
	targets    string
	profile    time.Duration
	flows      int
	polls      int
	coldstarts int
	benchtime  string
	skip       string
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.BoolVar(&o.short, "short", false, "a run of seconds, for CI: small counts, no profile, report to stdout unless -out is given")
	fs.StringVar(&o.root, "root", ".", "the repository root")
	fs.StringVar(&o.out, "out", "", "where the report goes (default docs/BENCHMARKS.md; with -short, stdout); \"-\" for stdout")
	fs.StringVar(&o.svg, "svg", "", "where the throughput chart goes (default docs/bench-throughput.svg; with -short, nowhere)")
	fs.IntVar(&o.load.Workers, "workers", 32, "concurrent load-generator workers (one keep-alive connection each)")
	fs.IntVar(&o.load.Records, "records", 64, "pending records per worker")
	fs.DurationVar(&o.load.Warmup, "warmup", 2*time.Second, "unmeasured warm-up per target")
	fs.DurationVar(&o.load.Duration, "duration", 10*time.Second, "measured load per target")
	fs.IntVar(&o.load.MaxRequests, "max-requests", 2_000_000, "upper bound on measured requests per target")
	fs.StringVar(&o.targets, "targets", "bare,memory,bolt", "throughput targets, in order")
	fs.DurationVar(&o.profile, "profile", 5*time.Second, "CPU-profile each devicegate target for this long under the same load (0: off)")
	fs.IntVar(&o.flows, "flows", 50, "complete flows for the store-cost count")
	fs.IntVar(&o.polls, "polls", 12, "pending polls per flow (12 = one minute at the 5 s default interval)")
	fs.IntVar(&o.coldstarts, "coldstarts", 20, "cold starts of the release binary")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "-benchtime for the microbenchmarks")
	fs.StringVar(&o.skip, "skip", "", "comma-separated parts to skip: throughput,flows,coldstart,micro")
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
			"workers":    func() { o.load.Workers = 8 },
			"records":    func() { o.load.Records = 8 },
			"warmup":     func() { o.load.Warmup = 200 * time.Millisecond },
			"duration":   func() { o.load.Duration = time.Second },
			"profile":    func() { o.profile = 0 },
			"flows":      func() { o.flows = 5 },
			"polls":      func() { o.polls = 3 },
			"coldstarts": func() { o.coldstarts = 3 },
			"benchtime":  func() { o.benchtime = "2000x" },
			"out":        func() { o.out = "-" },
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
	switch {
	case o.load.Workers < 1 || o.load.Workers > 1024:
		return errors.New("-workers must be 1 to 1024")
	case o.load.Records < 1 || o.load.Records > 4096:
		return errors.New("-records must be 1 to 4096")
	case o.load.Duration <= 0 || o.load.Duration > 10*time.Minute:
		return errors.New("-duration must be above 0 and at most 10m")
	case o.load.MaxRequests < o.load.Workers:
		return errors.New("-max-requests must be at least -workers")
	case o.flows < 1 || o.flows > 10_000, o.polls < 0 || o.polls > 1000:
		return errors.New("-flows must be 1 to 10000 and -polls 0 to 1000")
	case o.coldstarts < 1 || o.coldstarts > 1000:
		return errors.New("-coldstarts must be 1 to 1000")
	case o.profile < 0 || o.profile > time.Minute:
		return errors.New("-profile must be 0 to 1m")
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
	if !skip["throughput"] || !skip["flows"] {
		logf("building the in-process helper (go test -c %s)", helperPkg)
		if h, err = buildHelper(o.root, tmp); err != nil {
			return err
		}
	}

	if !skip["throughput"] {
		logf("1. poll-path throughput")
		dir := filepath.Join(tmp, "bolt")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		rep.BoltFS = fsType(dir)
		for t := range strings.SplitSeq(o.targets, ",") {
			run, err := measureTarget(h, strings.TrimSpace(t), dir, o.load, o.profile, logf)
			if run != nil {
				rep.Throughput = append(rep.Throughput, run)
				logf("  %s: %.0f req/s, p50 %s, p99 %s", run.Kind, run.Result.RPS, run.Result.P50, run.Result.P99)
			}
			if err != nil {
				fail(err)
			}
		}
		rt, rc, err := h.allocs()
		if err != nil {
			fail(err)
		} else {
			rep.RoutedAllocs, rep.ConstructAllocs = &rt, &rc
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
	if o.svg != "" && len(rep.Throughput) > 0 {
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

func commandLine(args []string) string {
	if len(args) == 0 {
		return "go run ./bench"
	}
	return "go run ./bench " + strings.Join(args, " ")
}
