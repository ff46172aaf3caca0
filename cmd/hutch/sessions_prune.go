package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

func sessionsPruneCommand() *cli.Command {
	return &cli.Command{
		Name:            "prune",
		HideHelpCommand: true,
		Usage:           "discard the kept sessions that hold no changes, or are old",
		Description: "Discards every kept session with no change left in any layer, and with\n" +
			"--older-than D also those not used for D (changes and all). Sessions in use\n" +
			"are left alone.",
		UsageText: "hutch sessions prune [--older-than D] [--dry-run]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "older-than", Usage: "also discard sessions not used for `D`: 30m, 12h, 7d, 2w"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "say what would be discarded, and keep it"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("sessions prune takes no arguments (hutch discard NAME discards one)")
			}
			var older time.Duration
			if v := c.String("older-than"); v != "" {
				d, err := parseAge(v)
				if err != nil {
					return usageErr(err)
				}
				older = d
			}
			verb := "discarded"
			if c.Bool("dry-run") {
				verb = "would discard"
			}
			n, err := session.PruneSessions(session.PruneOptions{OlderThan: older, DryRun: c.Bool("dry-run"),
				Progress: func(s session.SessionInfo, why string) {
					fmt.Fprintf(c.App.Writer, "%s session %s (%s): %s\n", verb, esc.Text(s.Name), esc.Text(displayProject(s.Project)), why)
				}})
			if err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintln(c.App.ErrWriter, "hutch: no sessions to prune")
			}
			return nil
		},
	}
}

// parseAge reads a duration as Go does (90m, 12h) or in days and weeks
// (7d, 2w).
func parseAge(s string) (time.Duration, error) {
	bad := fmt.Errorf("--older-than %q: give a duration such as 30m, 12h, 7d or 2w", s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v <= 0 {
				return 0, bad
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

func displayProject(p string) string {
	if p == "" {
		return "no project"
	}
	return p
}

// changesColumn counts a session's changes in every layer: the project's
// as they are, the others named ("2 added; home: 1 modified").
func changesColumn(s session.SessionInfo) string {
	if len(s.LayerChanges) == 0 {
		return s.Changes.String()
	}
	var parts []string
	for _, l := range s.LayerChanges {
		if l.Layer == sandbox.LayerProject {
			parts = append(parts, l.Counts.String())
		} else {
			parts = append(parts, l.Layer+": "+l.Counts.String())
		}
	}
	return strings.Join(parts, "; ")
}
