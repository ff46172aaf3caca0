package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// Summaries by directory: after `npm install` a session holds tens of
// thousands of paths, and a line for each buries the few that matter.
// Beyond summarizeOver changes, the paths in a top-level directory that
// holds more than groupOver of them are one line
// (`node_modules/ | 20,441 added`); --verbose prints every path. Paths
// the host runs later, and apply's outcomes other than applied, are
// always shown one by one (a merge too).
const (
	summarizeOver = 100
	groupOver     = 20
)

// groupOf is the top-level directory p is in ("" for a top-level file),
// with its slash. A top-level directory is its own group.
func groupOf(p string, isDir bool) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	if isDir {
		return p + "/"
	}
	return ""
}

func isDirChange(c layers.Change) bool {
	return (c.New != nil && c.New.Type == layers.TypeDir) || (c.New == nil && c.Old != nil && c.Old.Type == layers.TypeDir)
}

// foldedGroups picks the groups to fold: none when the changes are few.
func foldedGroups(cs []layers.Change) map[string]bool {
	if len(cs) <= summarizeOver {
		return nil
	}
	n := map[string]int{}
	for _, c := range cs {
		if g := groupOf(c.Path, isDirChange(c)); g != "" && c.RunsLater == "" {
			n[g]++
		}
	}
	out := map[string]bool{}
	for g, k := range n {
		if k > groupOver {
			out[g] = true
		}
	}
	return out
}

// groupCounts sums a folded group's changes by kind.
type groupCounts struct {
	order  []string
	counts map[string]*layers.Counts
}

func (g *groupCounts) add(group string, k layers.Kind) {
	if g.counts == nil {
		g.counts = map[string]*layers.Counts{}
	}
	c := g.counts[group]
	if c == nil {
		c = &layers.Counts{}
		g.counts[group] = c
		g.order = append(g.order, group)
	}
	switch k {
	case layers.Added:
		c.Added++
	case layers.Modified:
		c.Modified++
	case layers.Deleted:
		c.Deleted++
	case layers.TypeChanged:
		c.TypeChanged++
	case layers.ModeChanged:
		c.ModeChanged++
	}
}

// each calls fn for each group in order with its kind ("added" when all
// are, else "changed") and its counts ("20,441 added, 3 modified").
func (g *groupCounts) each(fn func(group, kind, counts string)) {
	sort.Strings(g.order)
	for _, name := range g.order {
		c := g.counts[name]
		var parts []string
		kinds := 0
		kind := "changed"
		for _, p := range []struct {
			n    int
			what string
		}{{c.Added, "added"}, {c.Modified, "modified"}, {c.Deleted, "deleted"}, {c.TypeChanged, "type-changed"}, {c.ModeChanged, "mode-changed"}} {
			if p.n > 0 {
				parts = append(parts, thousands(p.n)+" "+p.what)
				kinds++
				kind = p.what
			}
		}
		if kinds > 1 {
			kind = "changed"
		}
		fn(name, kind, strings.Join(parts, ", "))
	}
}

// thousands is n with a comma every three digits, as 20,441.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// writeStatSummary is writeStat with large directories folded (verbose:
// every line).
func writeStatSummary(w io.Writer, cs []layers.Change, verbose bool, col colors) error {
	fold := foldedGroups(cs)
	if verbose || len(fold) == 0 {
		if !col.on {
			return writeStat(w, cs)
		}
		var b strings.Builder
		if err := writeStat(&b, cs); err != nil {
			return err
		}
		_, err := io.WriteString(w, col.stat(b.String()))
		return err
	}
	var rest []layers.Change
	var groups groupCounts
	for _, c := range cs {
		if g := groupOf(c.Path, isDirChange(c)); fold[g] && c.RunsLater == "" {
			groups.add(g, c.Kind)
			continue
		}
		rest = append(rest, c)
	}
	var b strings.Builder
	later := ""
	tw := tabwriter.NewWriter(&b, 0, 4, 1, ' ', 0)
	groups.each(func(group, kind, counts string) {
		fmt.Fprintf(tw, " %s\t%s\t| %s\n", kind, esc.Text(group), counts)
	})
	tw.Flush()
	if len(rest) > 0 {
		var r strings.Builder
		writeStat(&r, rest)
		// writeStat's total line counts only the rest: drop it, ours follows.
		lines := strings.SplitAfter(r.String(), "\n")
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, " ") && !strings.Contains(l, "|") && strings.Contains(l, "insertion"):
			case strings.HasPrefix(l, "! marks "):
				later = l
			default:
				b.WriteString(l)
			}
		}
	}
	ins, del := 0, 0
	for _, c := range cs {
		ins, del = ins+c.Insertions, del+c.Deletions
	}
	fmt.Fprintf(&b, " %s; %s(+), %s(-)\n", layers.Count(cs), plural(ins, "insertion"), plural(del, "deletion"))
	b.WriteString(later)
	fmt.Fprintf(&b, "(directories with more than %d changes are summed up: --verbose lists every path)\n", groupOver)
	_, err := io.WriteString(w, col.stat(b.String()))
	return err
}

// applyPrinter prints apply's results as they come, folding applied
// changes in large directories into one line each at the end.
type applyPrinter struct {
	w      io.Writer
	fold   map[string]bool
	groups groupCounts
	dirs   map[string]bool // paths that are directories, to group them
}

func newApplyPrinter(w io.Writer, cs []layers.Change, verbose bool) *applyPrinter {
	p := &applyPrinter{w: w, dirs: map[string]bool{}}
	if !verbose {
		p.fold = foldedGroups(cs)
	}
	for _, c := range cs {
		if isDirChange(c) {
			p.dirs[c.Path] = true
		}
	}
	return p
}

func (p *applyPrinter) result(r layers.Result) {
	if r.Under != "" {
		return // carried by its directory's own change
	}
	if g := groupOf(r.Path, p.dirs[r.Path]); p.fold[g] && r.Outcome == layers.Applied && r.Reason == "" {
		p.groups.add(g, r.Kind)
		return
	}
	// Names were made inside the sandbox; reasons quote them.
	line := fmt.Sprintf("%-8s %-12s %s", r.Outcome, r.Kind, esc.Text(r.Path))
	if r.Reason != "" {
		line += ": " + esc.Lines(r.Reason)
	}
	fmt.Fprintln(p.w, line)
}

// flush prints the folded directories.
func (p *applyPrinter) flush() {
	p.groups.each(func(group, kind, counts string) {
		fmt.Fprintf(p.w, "%-8s %-12s %s  %s\n", layers.Applied, kind, esc.Text(group), counts)
	})
}
