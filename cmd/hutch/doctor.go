package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hutch-sandbox/hutch/doctor"
	"github.com/urfave/cli/v2"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check that this machine can run sandboxes, and say how to fix what it lacks",
		UsageText: "hutch doctor [--json]",
		Description: "Each check tries the real thing where that is cheap (it creates namespaces\n" +
			"and mounts an overlay in a child process) and prints ok, warn or fail, with\n" +
			"the fix. The exit status is 0 when a sandbox can run here (no check failed),\n" +
			"125 otherwise. docs/doctor.md explains every check.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: `print {"ok": bool, "checks": [{name, status, detail, fix}]}`},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("doctor takes no arguments")
			}
			d := doctor.Doctor(c.Context)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(d); err != nil {
					return err
				}
			} else {
				printDiagnosis(c.App.Writer, d)
			}
			if !d.OK {
				return errCannotRun
			}
			return nil
		},
	}
}

var errCannotRun = errors.New("this machine cannot run sandboxes yet: fix the checks marked fail")

// doctorWidth is where printDiagnosis wraps details; commands in fixes
// are never wrapped, so they can be copied whole.
const doctorWidth = 100

// printDiagnosis prints one aligned line per check, the detail wrapped
// under itself, and the fix below it.
func printDiagnosis(w io.Writer, d *doctor.Diagnosis) {
	nameW := 0
	for _, c := range d.Checks {
		nameW = max(nameW, len(c.Name))
	}
	indent := strings.Repeat(" ", 6+nameW+2)
	warns := 0
	for _, c := range d.Checks {
		if c.Status == doctor.CheckWarn {
			warns++
		}
		for i, line := range wrap(c.Detail, doctorWidth-len(indent)) {
			if i == 0 {
				fmt.Fprintf(w, "%-4s  %-*s  %s\n", c.Status, nameW, c.Name, line)
			} else {
				fmt.Fprintf(w, "%s%s\n", indent, line)
			}
		}
		for i, line := range strings.Split(strings.TrimSpace(c.Fix), "\n") {
			switch {
			case line == "":
			case i == 0:
				fmt.Fprintf(w, "%sfix: %s\n", indent, line)
			default:
				fmt.Fprintf(w, "%s     %s\n", indent, line)
			}
		}
	}
	if !d.OK {
		return
	}
	fmt.Fprintln(w)
	switch warns {
	case 0:
		fmt.Fprintln(w, "hutch can run sandboxes here, with every feature.")
	case 1:
		fmt.Fprintln(w, "hutch can run sandboxes here. The warning above says what is missing and how to fix it.")
	default:
		fmt.Fprintf(w, "hutch can run sandboxes here. The %d warnings above say what is missing and how to fix it.\n", warns)
	}
}

// wrap breaks s into lines of at most width runes, at spaces.
func wrap(s string, width int) []string {
	var lines []string
	var cur []string
	n := 0
	for _, word := range strings.Fields(s) {
		l := len([]rune(word))
		if n > 0 && n+1+l > width {
			lines = append(lines, strings.Join(cur, " "))
			cur, n = nil, 0
		}
		if n > 0 {
			n++
		}
		cur, n = append(cur, word), n+l
	}
	if len(cur) > 0 {
		lines = append(lines, strings.Join(cur, " "))
	}
	if len(lines) == 0 {
		lines = []string{""}
	}
	return lines
}
