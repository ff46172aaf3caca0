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
			"overwrites it). Applied changes leave the session; the rest stay.",
		UsageText: "hutch apply [--force] NAME [PATH...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "apply over changes made on the host since the session began"},
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
			rep, err := s.Apply(sandbox.ApplyOptions{Paths: paths, Force: c.Bool("force"), Progress: func(r layers.Result) {
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
				if rep.Counts[layers.Conflict] > 0 {
					fmt.Fprintf(c.App.ErrWriter, "hutch: hint: the conflicts stay in the session: compare with hutch diff %s PATH, then hutch apply --force %s PATH to overwrite\n", s.Name, s.Name)
				}
				return &exitStatus{code: 1}
			}
			return nil
		},
	}
}
