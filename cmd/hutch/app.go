package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// run is the whole CLI: it builds the app, runs it on args, and turns any
// error into one printed message and an exit code.
// started is when the CLI began, for --debug-timing: profile loading and
// the host probe happen before the sandbox launch and count too.
var started int64

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	started = sandbox.MonotonicNow()
	app := newApp(stdin, stdout, stderr)
	return report(stderr, app.RunContext(ctx, args))
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "hutch",
		Usage:                "run developer commands in a rootless sandbox",
		UsageText:            "hutch [global options] command [options] [-- CMD [ARGS...]]",
		Version:              Version,
		HideVersion:          true,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: false,
		// --env A=1,2 is one value: paths and values may hold commas.
		DisableSliceFlagSeparator: true,
		// Errors are printed once, by report; the defaults would print them
		// and exit from inside the library.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, isSub bool) error {
			return usagef("%v (see 'hutch %s --help')", err, c.Command.Name)
		},
		CommandNotFound: func(c *cli.Context, name string) {},
		Commands: []*cli.Command{
			runCommand(),
			shellCommand(),
			profileCommand(),
			initCommand(),
			trustCommand(),
			doctorCommand(),
			versionCommand(),
			// overlay sessions
			diffCommand(),
			applyCommand(),
			discardCommand(),
			sessionsCommand(),
			imageCommand(),
		},
	}
	// Subcommands print usage errors through report too, not with a
	// screenful of help.
	var quiet func(cmds []*cli.Command)
	quiet = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			if cmd.OnUsageError == nil {
				name := cmd.Name
				cmd.OnUsageError = func(c *cli.Context, err error, isSub bool) error {
					return usagef("%v (see 'hutch %s --help')", err, name)
				}
			}
			quiet(cmd.Subcommands)
		}
	}
	quiet(app.Commands)
	app.Action = func(c *cli.Context) error {
		if c.Args().Len() > 0 {
			return usagef("unknown command %q (see 'hutch --help')", c.Args().First())
		}
		return cli.ShowAppHelp(c)
	}
	return app
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print hutch's version",
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("version takes no arguments")
			}
			_, err := fmt.Fprintf(c.App.Writer, "hutch %s\n", Version)
			return err
		},
	}
}

// errNoCommand is returned when run is given nothing to run.
var errNoCommand = errors.New("no command given")
