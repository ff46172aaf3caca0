package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// run is the whole CLI: it builds the app, runs it on args, and turns any
// error into one printed message and an exit code.
// started is when the CLI began, for --debug-timing: profile loading and
// the host probe happen before the sandbox launch and count too.
var started int64

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	started = supervise.MonotonicNow()
	app := newApp(stdin, stdout, stderr)
	return report(stderr, app.RunContext(ctx, args))
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "hutch",
		Usage:                "run developer commands in a rootless sandbox",
		UsageText:            "hutch [global options] command [options] [-- CMD [ARGS...]]",
		Version:              Version,
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
			return usagef("%v (see 'hutch --help')", err)
		},
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
			psCommand(),
			execCommand(),
			imageCommand(),
			ociCommand(),
			completionCommand(),
			completeCommand(),
		},
	}
	// Subcommands print usage errors through report too, not with a
	// screenful of help.
	var quiet func(parent string, cmds []*cli.Command)
	quiet = func(parent string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			name := parent + " " + cmd.Name
			if cmd.OnUsageError == nil {
				cmd.OnUsageError = func(c *cli.Context, err error, isSub bool) error {
					return usagef("%v (see '%s --help')", err, name)
				}
			}
			quiet(name, cmd.Subcommands)
		}
	}
	quiet("hutch", app.Commands)
	namesOnce(app.Commands) // flagnames.go
	for _, cmd := range app.Commands {
		if len(cmd.Subcommands) > 0 && cmd.Action == nil {
			cmd.Action = unknownSubcommand
		}
	}
	app.Action = func(c *cli.Context) error {
		if c.Args().Len() > 0 {
			return unknownCommand(c.Args().First(), "hutch", app.Commands)
		}
		return cli.ShowAppHelp(c)
	}
	return app
}

func init() {
	// hutch --version and -v print what hutch version prints.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print hutch's version"}
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "hutch %s\n", c.App.Version)
	}
}

// unknownSubcommand is the action of a command that only groups others
// (hutch image, hutch profile): a word that names none of them is a
// usage error, not silence.
func unknownSubcommand(c *cli.Context) error {
	if c.Args().Len() == 0 {
		return cli.ShowSubcommandHelp(c)
	}
	return unknownCommand(c.Args().First(), "hutch "+c.Command.Name, c.Command.Subcommands)
}

// unknownCommand says that name is no command of parent, with the nearest
// one when a typo is likely.
func unknownCommand(name, parent string, cmds []*cli.Command) error {
	var names []string
	for _, cmd := range cmds {
		if !cmd.Hidden {
			names = append(names, cmd.Names()...)
		}
	}
	err := fmt.Errorf("unknown command %q (see '%s --help')", name, parent)
	if near := profiles.Suggest(name, names); near != "" {
		return usageErr(&sandbox.HintError{Err: err, Tip: fmt.Sprintf("did you mean %s %s?", parent, near)})
	}
	return usageErr(err)
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
