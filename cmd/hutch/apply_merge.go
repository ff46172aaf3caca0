package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

// newSessionApplyPrinter prints apply's results; to know whether to sum
// up large directories it counts the changes first (unless --verbose).
func newSessionApplyPrinter(c *cli.Context, s *session.Session, paths, exclude []string) (*applyPrinter, error) {
	var cs []layers.Change
	if !c.Bool("verbose") {
		lc, err := s.Diff(io.Discard, session.DiffOptions{Layer: sandbox.LayerProject, Paths: paths, Exclude: exclude})
		if err != nil {
			return nil, err
		}
		cs = lc.Changes
	}
	return newApplyPrinter(c.App.Writer, cs, c.Bool("verbose")), nil
}

// afterApply reports merges left with conflict markers, and discards the
// session when nothing is left in it.
func afterApply(c *cli.Context, s *session.Session, rep *layers.Report) error {
	if n := len(rep.Marked); n > 0 {
		fmt.Fprintf(c.App.ErrWriter, "hutch: merged %s with conflicts: resolve the <<<<<<< host / >>>>>>> session markers by hand\n", plural(n, "file"))
	}
	if rep.Counts[layers.Applied]+rep.Counts[layers.Merged] == len(rep.Results) {
		if err := discardIfDone(c, s); err != nil {
			return err
		}
	}
	return nil
}

// markedStatus is status 1 when merges left conflict markers, as git
// merge-file's is.
func markedStatus(rep *layers.Report) error {
	if len(rep.Marked) > 0 {
		return &exitStatus{code: 1}
	}
	return nil
}

// discardIfDone discards a session that holds no change any more, in any
// layer, and says so.
func discardIfDone(c *cli.Context, s *session.Session) error {
	done, err := s.DiscardIfDone()
	if err != nil {
		return fmt.Errorf("discarding session %s, whose changes are all applied: %w", s.Name, err)
	}
	if done {
		fmt.Fprintf(c.App.ErrWriter, "hutch: every change of session %s is applied: discarded it\n", esc.Text(s.Name))
	}
	return nil
}
