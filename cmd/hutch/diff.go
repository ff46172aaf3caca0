package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name: "diff",
		// A session may be called "h" or "help": no help subcommand.
		HideHelpCommand: true,
		Usage:           "show what a kept session changed",
		Description: "Lists the paths the session added, modified, deleted, or changed in type or\n" +
			"mode, with a unified diff of text files in the format of git diff --no-index.\n" +
			"PATHs (relative to the working directory, inside the project) narrow it down.",
		UsageText: "hutch diff [--stat [--verbose] | --json] [--layer LAYER] [--exclude GLOB]... NAME [PATH...]",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "stat", Usage: "one line per path, with counts of lines added and removed (large directories summed up)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "with --stat, one line for every path"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.StringFlag{Name: "layer", Value: sandbox.LayerProject, Usage: "the session's `LAYER`: project, home, image (what the command changed in an image's /), or root-DIR (root-usr, ...)"},
			excludeFlag(),
		}, colorFlags()...),
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return usagef("diff needs a session NAME (hutch sessions lists them)")
			}
			s, err := openSession(c.Args().First())
			if err != nil {
				return err
			}
			paths, err := selectPaths(s, c.String("layer"), c.Args().Tail())
			if err != nil {
				return err
			}
			exclude, err := excludeGlobs(c)
			if err != nil {
				return err
			}
			col, err := colorsFor(c)
			if err != nil {
				return err
			}
			format := "unified"
			switch {
			case c.Bool("json") && c.Bool("stat"):
				return usagef("--stat and --json: give one of them")
			case c.Bool("json"), c.Bool("stat"):
				format = "stat"
			}
			var buf strings.Builder
			lc, err := s.Diff(&buf, session.DiffOptions{Layer: c.String("layer"), Paths: paths, Exclude: exclude, Format: format})
			if err != nil {
				return err
			}
			cs := lc.Changes
			w := c.App.Writer
			switch {
			case c.Bool("json"):
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if cs == nil {
					cs = []layers.Change{}
				}
				return enc.Encode(struct {
					Session string          `json:"session"`
					Layer   string          `json:"layer"`
					Counts  layers.Counts   `json:"counts"`
					Changes []layers.Change `json:"changes"`
				}{s.Name, c.String("layer"), layers.Count(cs), cs})
			}
			return paged(c, func(w io.Writer) error {
				if c.Bool("stat") {
					return writeStatSummary(w, cs, c.Bool("verbose"), col)
				}
				_, err := io.WriteString(w, col.unified(buf.String()))
				return err
			})
		},
	}
}

// selectPaths turns PATH arguments into paths relative to the layer's
// root: relative to the working directory, and within the layer.
func selectPaths(s *session.Session, layer string, args []string) ([]string, error) {
	root := s.Project()
	if layer != sandbox.LayerProject {
		root = s.LayerRoot(layer)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(cwd); err == nil {
		cwd = r
	}
	var out []string
	for _, a := range args {
		p, ok := layers.CleanPath(root, cwd, a)
		if !ok {
			return nil, usagef("%s is outside %s, which the session's %s layer covers", a, root, layer)
		}
		out = append(out, p)
	}
	return out, nil
}

// writeStat prints one line per change, as git diff --stat does, with the
// kind of change first.
func writeStat(w io.Writer, cs []layers.Change) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no changes")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	ins, del, later := 0, 0, 0
	for _, c := range cs {
		name := esc.Text(c.Path) // made inside the sandbox
		if (c.New != nil && c.New.Type == layers.TypeDir) || (c.New == nil && c.Old != nil && c.Old.Type == layers.TypeDir) {
			name += "/"
		}
		detail := ""
		switch {
		case c.Kind == layers.ModeChanged && c.Old.Mode == c.New.Mode:
			detail = "xattrs"
		case c.Kind == layers.ModeChanged:
			detail = fmt.Sprintf("%04o → %04o", c.Old.Mode, c.New.Mode)
			if c.Xattrs {
				detail += ", xattrs"
			}
		case c.Binary:
			detail = "binary"
		case c.Insertions+c.Deletions > 0:
			detail = fmt.Sprintf("%d %s%s", c.Insertions+c.Deletions, strings.Repeat("+", min(c.Insertions, 40)), strings.Repeat("-", min(c.Deletions, 40)))
		}
		ins += c.Insertions
		del += c.Deletions
		if detail != "" {
			detail = " " + detail
		}
		mark := " "
		if c.RunsLater != "" {
			mark = "!"
			later++
		}
		fmt.Fprintf(tw, "%s%s\t%s\t|%s\n", mark, c.Kind, name, detail)
	}
	tw.Flush()
	_, err := fmt.Fprintf(w, " %s; %s(+), %s(-)\n", layers.Count(cs), plural(ins, "insertion"), plural(del, "deletion"))
	if later > 0 && err == nil {
		_, err = fmt.Fprintf(w, "! marks %s the host runs later (git config and hooks, .git, hutch.toml, .envrc, editor settings): hutch apply holds them back unless named or given --allow-run-later\n", plural(later, "path"))
	}
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
