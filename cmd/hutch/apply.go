package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

func applyCommand() *cli.Command {
	return &cli.Command{
		Name: "apply",
		// A session may be called "h" or "help": no help subcommand.
		HideHelpCommand: true,
		Usage:           "make a kept session's changes to the project on the host",
		Description: "Applies the session's changes (all, or those at or beneath each PATH) to the\n" +
			"project directory: each file is written aside and renamed into place, set-id\n" +
			"bits are stripped, no symlink on the host is followed. A path that changed on\n" +
			"the host since the session began is a conflict, left as it is (--force\n" +
			"overwrites it). Changes that run later on the host (git config and hooks,\n" +
			"any .git, hutch.toml, .envrc, .vscode/, .idea/) are held back unless a PATH\n" +
			"names them or --allow-run-later is given. Applied changes leave the session;\n" +
			"the rest stay.",
		UsageText: "hutch apply [--force | --merge] [--allow-run-later] [--exclude GLOB]... [--verbose] NAME [PATH...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "apply over changes made on the host since the session began"},
			&cli.BoolFlag{Name: "merge", Usage: "merge a text file the host changed since the session began with the session's (three-way, as git merge-file), leaving conflict markers where both changed the same lines"},
			&cli.BoolFlag{Name: "allow-run-later", Usage: "also apply changes the host runs later: git config and hooks, hutch.toml, .envrc, editor settings"},
			excludeFlag(),
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "one line for every path applied (else large directories are summed up)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return usagef("apply needs a session NAME (hutch sessions lists them)")
			}
			if c.Bool("force") && c.Bool("merge") {
				return usagef("--force and --merge: give one of them (--force overwrites the host's edits, --merge keeps them)")
			}
			s, err := openSession(c.Args().First())
			if err != nil {
				return err
			}
			paths, err := selectPaths(s, sandbox.LayerProject, c.Args().Tail())
			if err != nil {
				return err
			}
			exclude, err := excludeGlobs(c)
			if err != nil {
				return err
			}
			if err := s.Lock(); err != nil {
				return err
			}
			defer s.Close()
			pr, err := newSessionApplyPrinter(c, s, paths, exclude)
			if err != nil {
				return err
			}
			rep, err := s.Apply(session.ApplyOptions{Paths: paths, Force: c.Bool("force"), RunLater: c.Bool("allow-run-later"),
				Exclude: exclude, Merge: c.Bool("merge"), Progress: pr.result})
			pr.flush()
			if err != nil {
				return err
			}
			applied := rep.Counts[layers.Applied] + rep.Counts[layers.Merged]
			total := len(rep.Results)
			if total == 0 {
				fmt.Fprintf(c.App.ErrWriter, "hutch: session %s has no changes to apply\n", s.Name)
				return discardIfDone(c, s)
			}
			fmt.Fprintf(c.App.ErrWriter, "hutch: applied %d of %d changes to %s\n", applied, total, esc.Text(s.Project()))
			if err := afterApply(c, s, rep); err != nil {
				return err
			}
			if rep.Stopped != "" {
				fmt.Fprintf(c.App.ErrWriter, "hutch: error: apply stopped: %s; every file is either as it was or as the session has it\n", esc.Lines(rep.Stopped))
			}
			if applied < total {
				if n := rep.Counts[layers.Held]; n > 0 {
					fmt.Fprintf(c.App.ErrWriter, "hutch: held back %s that the host runs later (git config and hooks, hutch.toml, .envrc, editor settings); they stay in the session\n", plural(n, "change"))
					fmt.Fprintf(c.App.ErrWriter, "hutch: hint: read them with hutch diff %s, then apply them by name (hutch apply %s PATH) or with --allow-run-later\n", s.Name, s.Name)
				}
				if rep.Counts[layers.Conflict] > 0 {
					fmt.Fprintf(c.App.ErrWriter, "hutch: hint: the conflicts stay in the session: compare with hutch diff %s PATH, then hutch apply --merge %s PATH to merge (text files) or --force to overwrite\n", s.Name, s.Name)
				}
				return &exitStatus{code: 1}
			}
			return markedStatus(rep)
		},
	}
}
