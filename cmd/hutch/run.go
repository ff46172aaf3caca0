package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// sandboxFlags are shared by run and shell: one flag per profile key
// (keyedFlags), then the invocation's own.
func sandboxFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range keyedFlags() {
		out = append(out, f.flag)
	}
	out = append(out, overlayFlags()...) // overlay flags (overlayflags.go)
	return append(out, invocationFlags()...)
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a sandbox",
		UsageText: "hutch run [options] -- CMD [ARGS...]",
		Flags: append(append(sandboxFlags(),
			&cli.BoolFlag{Name: "dry-run", Usage: "print the resolved plan instead of running it"},
			&cli.BoolFlag{Name: "json", Usage: "with --dry-run: print the plan as JSON"},
			&cli.BoolFlag{Name: "debug-timing", Usage: "print where start-up time goes"},
			&cli.StringFlag{Name: "report", Usage: "write the requests the network proxy blocked to `FILE` as JSON"},
		), ciFlags()...),
		Before: prestartInit, // prestart.go
		After:  closePrestarted,
		Action: func(c *cli.Context) error {
			return withResult(c, func() (*supervise.Result, error) { return runAction(c) })
		},
	}
}

// runAction is hutch run's: the spec from the flags, then the run.
func runAction(c *cli.Context) (*supervise.Result, error) {
	args := c.Args().Slice()
	script, err := scriptArg(c)
	if err != nil {
		return nil, err
	}
	if script != "" {
		if len(args) == 0 {
			return nil, usagef("--script needs the command to run it, as in: hutch run --script FILE -- bash -e")
		}
		args = append(args, script)
	}
	if c.Bool("dry-run") && c.IsSet("result") {
		return nil, usagef("--result records a run, and --dry-run runs nothing")
	}
	spec, err := specFromFlags(c, args)
	if err != nil {
		return nil, err
	}
	// An image brings its own command (Entrypoint and Cmd).
	if len(args) == 0 && sandbox.ImageRef(spec) == "" {
		return nil, usagef("%v: give the command after --, as in: hutch run -- npm install", errNoCommand)
	}
	return runSpec(c, spec)
}

func shellCommand() *cli.Command {
	return &cli.Command{
		Name:      "shell",
		Usage:     "run your shell interactively in a sandbox",
		UsageText: "hutch shell [options]",
		Flags:     sandboxFlags(),
		Before:    prestartInit, // prestart.go
		After:     closePrestarted,
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("shell takes no command; use hutch run -- CMD")
			}
			spec, err := specFromFlags(c, nil)
			if err != nil {
				return err
			}
			if !c.IsSet("tty") {
				spec.TTY = "auto"
			}
			spec.Shell = true
			_, err = runSpec(c, spec)
			return err
		},
	}
}

// runSpec plans and runs spec. The Result is how the command ended; with
// an error it may still hold what is known of the run, for --result.
func runSpec(c *cli.Context, spec sandbox.Spec) (*supervise.Result, error) {
	opts := supervise.LaunchOptions{
		DebugTiming: c.Bool("debug-timing"),
		Warn:        func(msg string) { fmt.Fprintf(c.App.ErrWriter, "hutch: warning: %s\n", msg) },
		Info:        verboseFunc(c), // overlay flags: --verbose
		Prestarted:  prestarted,
	}
	if opts.DebugTiming {
		opts.Origin = started
		fmt.Fprintf(c.App.ErrWriter, "hutch: timing: cli        profiles loaded             +%6.2fms\n",
			float64(supervise.MonotonicNow()-started)/1e6)
	}
	rep, err := openReport(c) // before the run: report.go
	if err != nil {
		return nil, err
	}
	if rep != nil {
		defer rep.Close()
	}
	prep, err := sandbox.Prepare(spec, func(host *sandbox.Host, key, ref string) (*image.Root, error) {
		return openImage(c, host, spec, key, ref)
	})
	if err != nil {
		return nil, err
	}
	defer prep.Close() // the run holds its image root: prune leaves the layers alone
	plan := prep.Plan
	if c.Bool("dry-run") {
		if c.Bool("json") {
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return nil, enc.Encode(plan)
		}
		return nil, printPlan(c.App.Writer, plan)
	}
	learn, err := openLearnTarget(c, spec.Network.Learn)
	if err != nil {
		return nil, err
	}
	for _, n := range plan.Notes {
		fmt.Fprintf(c.App.ErrWriter, "hutch: note: %s\n", n)
	}
	if w := rootWarning(os.Geteuid()); w != "" {
		opts.Warn(w)
	}
	res, err := supervise.Launch(c.Context, plan, supervise.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, opts)
	for _, w := range sandbox.CheckGit(plan) {
		opts.Warn(w)
	}
	if err != nil {
		if learn != nil {
			learn.dir.Close()
		}
		return res, hiddenToolHint(err, prep.Host.Home)
	}
	if learn != nil {
		if err := learn.write(res.Learned, plan.HostLoopback, res.ExitCode); err != nil {
			return res, err
		}
		word := shellWord(learn.display)
		fmt.Fprintf(c.App.ErrWriter, "hutch: learn mode: wrote %s; review it, approve it with hutch trust %s, then run with --profile %s\n",
			esc.Text(learn.display), word, word)
	}
	if err := reportDenials(c, rep, res.Denials); err != nil {
		return res, err
	}
	reportHomeWrites(c, res.HomeWrites)
	reportOfflineLookups(c.App.ErrWriter, res.OfflineLookups, res.ExitCode)
	if res.ExitCode != 0 {
		return res, &exitStatus{code: res.ExitCode}
	}
	return res, nil
}

// rootWarning is what hutch run says when started by root: as hutch doctor
// says, what escapes a sandbox root started is root.
func rootWarning(euid int) string {
	if euid != 0 {
		return ""
	}
	return "running as root: hutch is meant for unprivileged users; a sandbox started by root runs as the host's root, so whatever escapes it is root (run hutch as your own user)"
}
