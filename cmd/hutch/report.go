package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/result"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// openReport opens --report FILE's directory before the run, as
// --result's: the command may write where the report goes, and must not
// be able to point hutch's write elsewhere (result.Writer). Nil without
// --report.
func openReport(c *cli.Context) (*result.Writer, error) {
	file := c.String("report")
	if file == "" {
		return nil, nil
	}
	w, err := result.Open("--report", file, preservedFDs(c))
	if err != nil {
		return nil, usageErr(err)
	}
	return w, nil
}

// reportDenials tells the user what the network proxy refused, so they
// learn which line to add to network.allow, and writes --report FILE to
// rep (nil without it).
func reportDenials(c *cli.Context, rep *result.Writer, ds []proxy.Denial) error {
	if rep != nil {
		err := rep.WriteJSON(struct {
			Blocked []proxy.Denial `json:"blocked"`
		}{Blocked: append([]proxy.Denial{}, ds...)})
		if err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	w := c.App.ErrWriter
	fmt.Fprintf(w, "hutch: the network proxy blocked %d destination(s):\n", len(ds))
	for _, d := range ds {
		// Hostnames and methods are what the sandbox asked for.
		fmt.Fprintf(w, "hutch:   %s:%d  (%d× %s) %s\n", esc.Text(d.Host), d.Port, d.Count, esc.Text(d.Method), esc.Lines(d.Reason))
	}
	// One entry a destination: a host blocked on 80 and on 443 is one name.
	var names []string
	seen := map[string]bool{}
	for _, d := range ds {
		name := d.Host
		if d.Port != 80 && d.Port != 443 {
			name += ":" + strconv.Itoa(d.Port)
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, esc.Quote(name))
		}
	}
	// Where the line goes: the project's hutch.toml when it has one, else
	// --allow for this run (a hutch.toml keeps it).
	home, _ := os.UserHomeDir()
	wd, _ := os.Getwd()
	if file, err := profiles.Discover(wd, home); err == nil && file != "" {
		fmt.Fprintf(w, "hutch: hint: to allow them, add to %s:\n", esc.Text(displayFile(file, wd)))
		fmt.Fprintf(w, "hutch: hint:   [network]\nhutch: hint:   allow = [%s]\n", strings.Join(names, ", "))
		return nil
	}
	fmt.Fprintf(w, "hutch: hint: to allow them for this run: hutch run")
	for _, n := range names {
		fmt.Fprintf(w, " --allow %s", n)
	}
	fmt.Fprintf(w, " …\nhutch: hint: to keep them, write a hutch.toml here (hutch init) with:\n")
	fmt.Fprintf(w, "hutch: hint:   [network]\nhutch: hint:   allow = [%s]\n", strings.Join(names, ", "))
	return nil
}

// displayFile is file relative to dir when beneath it.
func displayFile(file, dir string) string {
	if rel, err := filepath.Rel(dir, file); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return file
}

// reportHomeWrites says, once, what the command wrote to its temporary
// home: it is gone with the sandbox, and a tool that printed "installed
// to ~/go/bin/tomlv" gave no hint of that.
func reportHomeWrites(c *cli.Context, w *sandbox.HomeWrites) {
	if w == nil || w.Count == 0 {
		return
	}
	var names []string
	for _, p := range w.Paths {
		names = append(names, "~/"+esc.Text(p))
	}
	if w.Count > len(w.Paths) || w.More {
		names = append(names, "…")
	}
	count := strconv.Itoa(w.Count)
	if w.More {
		count = "more than " + count
	}
	what, were := "files", "were"
	if w.Count == 1 && !w.More {
		what, were = "file", "was"
	}
	fmt.Fprintf(c.App.ErrWriter, "hutch: %s %s written to the temporary home %s discarded (%s); keep them with home = \"overlay\" and --keep NAME, or bind their directory with --rw\n",
		count, what, were, strings.Join(names, ", "))
}
