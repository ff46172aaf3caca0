package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name:      "ps",
		Usage:     "list the sandboxes you are running",
		UsageText: "hutch ps [--json]",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("ps takes no arguments")
			}
			host, err := sandbox.ProbeHost()
			if err != nil {
				return err
			}
			list, err := supervise.Running(host.RuntimeDir)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if list == nil {
					list = []supervise.RunInfo{}
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(c.App.ErrWriter, "hutch: no sandboxes running")
				return nil
			}
			home, _ := os.UserHomeDir()
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPID\tPROJECT\tCOMMAND\tAGE\tNETWORK\tSESSION")
			for _, r := range list {
				session := r.Session
				if session == "" {
					session = "-"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.PID, shown(tildePath(r.Dir, home)),
					shown(argvLine(r.Args, 60)), age(r.Started), r.Network, shown(session))
			}
			return tw.Flush()
		},
	}
}

// argvLine joins a command line for a table, cut to width runes.
func argvLine(args []string, width int) string {
	s := strings.Join(args, " ")
	if r := []rune(s); len(r) > width {
		s = string(r[:width-1]) + "…"
	}
	return s
}

// shown makes a string safe to print on a terminal: one with control or
// format characters is printed quoted, with escapes.
func shown(s string) string {
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

func tildePath(p, home string) string {
	if home != "" && (p == home || strings.HasPrefix(p, home+"/")) {
		return "~" + strings.TrimPrefix(p, home)
	}
	return p
}
