// Command bench measures hutch against the tools a developer would pick
// instead of it (bubblewrap, unshare, rootlesskit, podman) and against no
// sandbox at all, side by side, in one run on one machine.
//
// It is what `make bench` runs (issue 8). It installs nothing: it looks for
// each peer, says which are missing or cannot work here, and measures the
// rest. Every process is timed from outside, with this program's own
// fork/exec+wait harness on the wall clock, after warm-up runs. The result
// is a markdown table on stdout and the same data as JSON in
// bench/results/DATE.json.
//
// # What it measures
//
//   - start-up and teardown of `true` (at least 50 runs each, interleaved);
//   - a file-system workload (extract a ~10k-file tree, find, read, delete);
//   - a `go build` of hutch's own module, natively and inside hutch;
//   - the memory of hutch's supervisor and hutch-init while a sandbox idles;
//   - network throughput and small HTTP requests, per network mode.
//
// A measurement whose hutch feature has not landed prints "not available yet
// (needs issue N)"; each is a scenario in a table below, so that it starts
// being measured by filling in its command line.
//
// # Why not as root
//
// hutch is rootless. As root, hutch, bwrap, unshare and podman take their
// privileged paths and the numbers say nothing about what users get, so the
// bench refuses to run as root. `make bench` as root re-runs it as
// $(HUTCH_TEST_USER).
//
// The code lives under bench/ as its own main package and is never linked
// into the hutch binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	hutch     string // prebuilt hutch binary; "" builds one
	src       string // the hutch source tree (module root)
	work      string // scratch directory, bound into sandboxes as the project
	out       string // results directory
	runs      int    // counted start-up runs per scenario
	warmup    int    // warm-up runs per scenario
	fsRuns    int    // counted runs of the file-system workload
	buildRuns int    // counted runs of go build
	phaseRuns int    // runs of --debug-timing for the phase breakdown
	netSecs   int    // seconds per iperf3 run
	only      map[string]bool
	compare   []namedPath // other hutch builds timed beside it (start-up and its trace)
	quick     bool
	verbose   bool
	commit    string // what was measured, when the tree is a copy without .git
}

var groups = []string{"startup", "phases", "fs", "gobuild", "memory", "network", "services"}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		// The small client that runs inside sandboxes (network tests).
		os.Exit(clientMain(os.Args[2:]))
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench: error: %v\n", err)
		return 2
	}
	if os.Geteuid() == 0 {
		return asTestUser(o, args, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := newBench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: error: %v\n", err)
		return 1
	}
	defer b.close()
	rep := b.runAll(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted")
		return 130
	}
	writeMarkdown(stdout, rep)
	path, err := writeJSON(o.out, rep)
	if err != nil {
		fmt.Fprintf(stderr, "bench: error: writing the results: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nJSON: %s\n", path)
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	cache, _ := os.UserCacheDir()
	fs.StringVar(&o.hutch, "hutch", "", "use this hutch `binary` (default: build one from -src with CGO_ENABLED=0 -ldflags '-s -w')")
	fs.StringVar(&o.src, "src", ".", "the hutch source `tree`")
	fs.StringVar(&o.work, "work", filepath.Join(cache, "hutch-bench"), "scratch `dir` (bound into the sandboxes as their project)")
	fs.StringVar(&o.out, "out", "bench/results", "write DATE.json into `dir`")
	fs.IntVar(&o.runs, "runs", 50, "counted start-up runs per scenario")
	fs.IntVar(&o.warmup, "warmup", 5, "warm-up runs per scenario")
	fs.IntVar(&o.fsRuns, "fs-runs", 3, "counted runs of the file-system workload")
	fs.IntVar(&o.buildRuns, "build-runs", 4, "counted runs of go build")
	fs.IntVar(&o.phaseRuns, "phase-runs", 20, "runs of hutch run --debug-timing for the phase breakdown")
	fs.IntVar(&o.netSecs, "net-seconds", 2, "seconds per iperf3 run")
	only := fs.String("only", "", "comma-separated `groups` to run: "+strings.Join(groups, ","))
	fs.Func("compare", "also time the start-up of another hutch build, given as `NAME=PATH` (repeatable): a patch's effect, side by side", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return errors.New("want NAME=PATH")
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		o.compare = append(o.compare, namedPath{name, abs})
		return nil
	})
	fs.BoolVar(&o.quick, "quick", false, "a smoke test: few runs of everything (numbers not for publishing)")
	fs.BoolVar(&o.verbose, "v", false, "print every command as it is measured")
	fs.StringVar(&o.commit, "commit", "", "describe the measured source as `TEXT` (set when run as root through the test user, on a copy without .git)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see bench -help)", fs.Arg(0))
	}
	if o.quick {
		o.runs, o.warmup, o.fsRuns, o.buildRuns, o.phaseRuns, o.netSecs = 10, 2, 1, 1, 5, 1
	}
	if o.runs < 1 || o.fsRuns < 1 || o.buildRuns < 1 || o.phaseRuns < 1 || o.netSecs < 1 {
		return nil, errors.New("run counts must be at least 1")
	}
	if *only != "" {
		o.only = map[string]bool{}
		for _, g := range strings.Split(*only, ",") {
			g = strings.TrimSpace(g)
			if !contains(groups, g) {
				return nil, fmt.Errorf("-only: unknown group %q (groups: %s)", g, strings.Join(groups, ", "))
			}
			o.only[g] = true
		}
	}
	var err error
	for _, p := range []*string{&o.src, &o.work, &o.out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	if o.hutch != "" {
		if o.hutch, err = filepath.Abs(o.hutch); err != nil {
			return nil, err
		}
	}
	return o, nil
}

type namedPath struct{ name, path string }

func (o *options) wants(group string) bool { return o.only == nil || o.only[group] }

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// logf prints progress to stderr with the time since the bench started.
type logger struct {
	w     io.Writer
	start time.Time
}

func (l *logger) printf(format string, args ...any) {
	fmt.Fprintf(l.w, "bench: [%5.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}
