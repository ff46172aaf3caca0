package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// sandboxFlags are shared by run and shell; each becomes a profile key.
func sandboxFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "rw", Usage: "bind host `PATH` writable at the same path (repeatable)"},
		&cli.StringSliceFlag{Name: "ro", Usage: "bind host `PATH` read-only at the same path (repeatable)"},
		&cli.StringSliceFlag{Name: "hide", Usage: "mask `PATH` with an empty directory or file (repeatable)"},
		&cli.StringSliceFlag{Name: "tmpfs", Usage: "mount an empty writable tmpfs at `PATH` (repeatable)"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `KEY=VALUE` inside (repeatable)"},
		&cli.StringSliceFlag{Name: "keep-env", Usage: "pass host variables matching `PATTERN` (glob, repeatable)"},
		&cli.StringFlag{Name: "user", Value: "self", Usage: "`self` (your own uid inside) or root (uid 0 inside)"},
		&cli.StringFlag{Name: "idmap", Value: "auto", Usage: "`auto` (your /etc/subuid range when available) or single (one id)"},
		&cli.StringFlag{Name: "hostname", Value: sandbox.DefaultHostname, Usage: "host `NAME` inside"},
		&cli.StringFlag{Name: "network", Value: "none", Usage: "`none` (only lo) or host"},
		&cli.StringFlag{Name: "project", Usage: "project `DIR` bound read-write (default: the working directory)"},
		&cli.StringFlag{Name: "tty", Value: "auto", Usage: "`auto` (a pty when stdin is a terminal), always or never"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass `N` extra fds (3 .. 3+N-1) to the command"},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a sandbox",
		UsageText: "hutch run [options] -- CMD [ARGS...]",
		Flags: append(sandboxFlags(),
			&cli.BoolFlag{Name: "dry-run", Usage: "print the resolved plan instead of running it"},
			&cli.BoolFlag{Name: "json", Usage: "with --dry-run: print the plan as JSON"},
			&cli.BoolFlag{Name: "debug-timing", Usage: "print where start-up time goes"},
		),
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return usagef("%v: give the command after --, as in: hutch run -- npm install", errNoCommand)
			}
			spec, err := specFromFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			return runSpec(c, spec)
		},
	}
}

func shellCommand() *cli.Command {
	return &cli.Command{
		Name:      "shell",
		Usage:     "run your shell interactively in a sandbox",
		UsageText: "hutch shell [options]",
		Flags:     sandboxFlags(),
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
			return runSpec(c, spec)
		},
	}
}

func specFromFlags(c *cli.Context, args []string) (sandbox.Spec, error) {
	s := sandbox.Spec{
		Args: args,
		Filesystem: sandbox.Filesystem{
			Project: c.String("project"),
		},
		Network: sandbox.Network{Mode: c.String("network")},
		Env:     sandbox.Env{Keep: c.StringSlice("keep-env")},
		Process: sandbox.Process{
			User:     c.String("user"),
			IDMap:    c.String("idmap"),
			Hostname: c.String("hostname"),
		},
		TTY:         c.String("tty"),
		PreserveFDs: c.Int("preserve-fds"),
	}
	abs := func(ps []string) ([]string, error) {
		var out []string
		for _, p := range ps {
			r, err := absPath(p)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	fs := &s.Filesystem
	for _, f := range []struct {
		flag string
		dst  *[]string
	}{{"rw", &fs.RW}, {"ro", &fs.RO}, {"hide", &fs.Hide}, {"tmpfs", &fs.Tmpfs}} {
		var err error
		if *f.dst, err = abs(c.StringSlice(f.flag)); err != nil {
			return s, err
		}
	}
	if fs.Project != "" {
		var err error
		if fs.Project, err = absPath(fs.Project); err != nil {
			return s, err
		}
	}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// KEY alone passes the host's value, as docker run -e KEY does.
			var set bool
			if v, set = os.LookupEnv(k); !set {
				return s, usagef("--env %s: not set in your environment; use --env %s=VALUE", k, k)
			}
		}
		if s.Env.Set == nil {
			s.Env.Set = map[string]string{}
		}
		s.Env.Set[k] = v
	}
	if err := s.Validate(); err != nil {
		return s, usagef("%v", err)
	}
	return s, nil
}

func runSpec(c *cli.Context, spec sandbox.Spec) error {
	opts := sandbox.LaunchOptions{
		DebugTiming: c.Bool("debug-timing"),
		Warn:        func(msg string) { fmt.Fprintf(c.App.ErrWriter, "hutch: warning: %s\n", msg) },
	}
	if opts.DebugTiming {
		opts.Origin = sandbox.MonotonicNow()
	}
	host, err := sandbox.ProbeHost()
	if err != nil {
		return err
	}
	plan, err := sandbox.NewPlan(spec, host)
	if err != nil {
		return err
	}
	if c.Bool("dry-run") {
		if c.Bool("json") {
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(plan)
		}
		return printPlan(c.App.Writer, plan)
	}
	for _, n := range plan.Notes {
		fmt.Fprintf(c.App.ErrWriter, "hutch: note: %s\n", n)
	}
	res, err := sandbox.Launch(c.Context, plan, sandbox.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, opts)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return &exitStatus{code: res.ExitCode}
	}
	return nil
}
