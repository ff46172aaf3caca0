package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

func sessionsCommand() *cli.Command {
	return &cli.Command{
		Name: "sessions",
		// A session may be called "h" or "help": no help subcommand.
		HideHelpCommand: true,
		Usage:           "list kept sessions",
		UsageText:       "hutch sessions [--json]\nhutch sessions prune [--older-than D] [--dry-run]",
		Flags:           []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Subcommands:     []*cli.Command{sessionsPruneCommand()},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("sessions takes no arguments")
			}
			list, err := session.Sessions()
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if list == nil {
					list = []session.SessionInfo{}
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(c.App.ErrWriter, "hutch: no kept sessions (hutch run --keep NAME -- CMD keeps one)")
				return nil
			}
			home, _ := os.UserHomeDir()
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROJECT\tDRIVER\tSIZE\tAGE\tCHANGES\tSTATE")
			for _, s := range list {
				project := s.Project
				if home != "" && strings.HasPrefix(project, home+"/") {
					project = "~" + strings.TrimPrefix(project, home)
				}
				if project == "" {
					project = "-"
				}
				changes := "-"
				if s.Changes != nil {
					changes = changesColumn(s)
				}
				state := "idle"
				switch {
				case s.Error != "":
					state = "error: " + esc.Lines(s.Error)
				case s.InUse != 0:
					state = fmt.Sprintf("in use by pid %d", s.InUse)
				case s.Interrupted:
					state = "interrupted (its last run was killed)"
				case s.Stopped != "":
					state = "idle (its last run was stopped: " + s.Stopped + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", esc.Text(s.Name), esc.Text(project), s.Driver, humanSize(s.Size), age(s.Created), changes, state)
			}
			return tw.Flush()
		},
	}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// age is how long ago t was, as ps prints it: 5s, 3m, 2h, 4d.
func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
