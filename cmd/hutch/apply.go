package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
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
		UsageText: "hutch apply [--force] [--allow-run-later] NAME [PATH...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "apply over changes made on the host since the session began"},
			&cli.BoolFlag{Name: "allow-run-later", Usage: "also apply changes the host runs later: git config and hooks, hutch.toml, .envrc, editor settings"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return usagef("apply needs a session NAME (hutch sessions lists them)")
			}
			s, err := sandbox.OpenSession(c.Args().First())
			if err != nil {
				return err
			}
			paths, err := selectPaths(s, sandbox.LayerProject, c.Args().Tail())
			if err != nil {
				return err
			}
			if err := s.Lock(); err != nil {
				return err
			}
			defer s.Close()
			w := c.App.Writer
			carried := 0
			rep, err := s.Apply(sandbox.ApplyOptions{Paths: paths, Force: c.Bool("force"), RunLater: c.Bool("allow-run-later"), Progress: func(r layers.Result) {
				if r.Under != "" {
					carried++ // a file in a directory that went as a whole
					return
				}
				// Names were made inside the sandbox; reasons quote them.
				line := fmt.Sprintf("%-8s %-12s %s", r.Outcome, r.Kind, esc.Text(r.Path))
				if r.Reason != "" {
					line += ": " + esc.Lines(r.Reason)
				}
				fmt.Fprintln(w, line)
			}})
			if err != nil {
				return err
			}
			applied := rep.Counts[layers.Applied]
			total := len(rep.Results)
			if total == 0 {
				fmt.Fprintf(c.App.ErrWriter, "hutch: session %s has no changes to apply\n", s.Name)
				return nil
			}
			fmt.Fprintf(c.App.ErrWriter, "hutch: applied %d of %d changes to %s\n", applied, total, esc.Text(s.Project()))
			if rep.Stopped != "" {
				fmt.Fprintf(c.App.ErrWriter, "hutch: error: apply stopped: %s; every file is either as it was or as the session has it\n", esc.Lines(rep.Stopped))
			}
			if applied < total {
				if n := rep.Counts[layers.Held]; n > 0 {
					fmt.Fprintf(c.App.ErrWriter, "hutch: held back %s that the host runs later (git config and hooks, hutch.toml, .envrc, editor settings); they stay in the session\n", plural(n, "change"))
					fmt.Fprintf(c.App.ErrWriter, "hutch: hint: read them with hutch diff %s, then apply them by name (hutch apply %s PATH) or with --allow-run-later\n", s.Name, s.Name)
				}
				if rep.Counts[layers.Conflict] > 0 {
					fmt.Fprintf(c.App.ErrWriter, "hutch: hint: the conflicts stay in the session: compare with hutch diff %s PATH, then hutch apply --force %s PATH to overwrite\n", s.Name, s.Name)
				}
				return &exitStatus{code: 1}
			}
			return nil
		},
	}
}
