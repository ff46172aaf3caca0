package layers

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/esc"
)

// Files larger than this, or with NUL bytes, are "binary": their diff is
// one line, as git prints for them.
const maxTextSize = 4 << 20

// readText returns a file's content when it is text.
func readText(p string, e *Entry) ([]byte, bool, error) {
	if e == nil || e.Type != TypeFile {
		return nil, true, nil
	}
	if e.Size > maxTextSize {
		return nil, false, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false, err
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, false, nil
	}
	return data, true, nil
}

// sides returns the old (lower) and new (upper) text of c; for a symlink,
// its target, as git shows one.
func (l *Layer) sides(c *Change) (oldText, newText []byte, text bool, err error) {
	text = true
	get := func(p string, e *Entry) ([]byte, error) {
		if e == nil {
			return nil, nil
		}
		switch e.Type {
		case TypeSymlink:
			return []byte(e.Target), nil
		case TypeFile:
			b, ok, err := readText(p, e)
			if !ok {
				text = false
			}
			return b, err
		}
		return nil, nil
	}
	if c.Kind == ModeChanged || (c.Kind == Deleted && c.Old.Type == TypeDir) || (c.Kind == Added && c.New.Type == TypeDir) {
		return nil, nil, true, nil
	}
	if oldText, err = get(l.lowerPath(c.Path), c.Old); err != nil {
		return
	}
	newText, err = get(l.upperPath(c.Path), c.New)
	return
}

// Stat fills each change's line counts and Binary flag.
func (l *Layer) Stat(changes []Change) error {
	for i := range changes {
		c := &changes[i]
		o, n, text, err := l.sides(c)
		if err != nil {
			return err
		}
		if !text {
			c.Binary = true
			continue
		}
		for _, op := range lineDiff(splitLines(o), splitLines(n)) {
			switch op.kind {
			case '+':
				c.Insertions++
			case '-':
				c.Deletions++
			}
		}
	}
	return nil
}

// gitMode is git's octal mode for an entry ("100644", "040755", "120000").
func gitMode(e *Entry) string {
	switch e.Type {
	case TypeDir:
		return fmt.Sprintf("040%03o", e.Mode&0o777)
	case TypeSymlink:
		return "120000"
	}
	return fmt.Sprintf("100%03o", e.Mode&0o777)
}

// WriteUnified writes changes as git diff --no-index does: a header per
// path, mode lines, and a unified diff with 3 lines of context for text.
// Directories show as mode lines only.
//
// Names and text come from inside the sandbox: both are printed with
// esc.Text/esc.Lines, so an escape sequence in a file name or a line
// cannot drive the terminal that reads the diff.
func (l *Layer) WriteUnified(w io.Writer, changes []Change) error {
	for i := range changes {
		c := &changes[i]
		name := esc.Text(c.Path)
		if c.RunsLater != "" {
			fmt.Fprintf(w, "! %s runs later on the host: %s\n", name, esc.Text(c.RunsLater))
		}
		if (c.Old != nil && c.Old.Type == TypeDir && c.Kind != TypeChanged) || (c.New != nil && c.New.Type == TypeDir && c.Kind != TypeChanged) {
			if c.Kind == ModeChanged {
				fmt.Fprintf(w, "diff --git a/%s/ b/%s/\nold mode %s\nnew mode %s\n", name, name, gitMode(c.Old), gitMode(c.New))
			} else if c.Kind == Added {
				fmt.Fprintf(w, "diff --git a/%s/ b/%s/\nnew directory mode %s\n", name, name, gitMode(c.New))
			} else if c.Kind == Deleted {
				fmt.Fprintf(w, "diff --git a/%s/ b/%s/\ndeleted directory mode %s\n", name, name, gitMode(c.Old))
			}
			continue
		}
		if c.Kind == TypeChanged {
			// git shows a type change as a deletion and an addition.
			del, add := *c, *c
			del.Kind, del.New = Deleted, nil
			del.RunsLater, add.RunsLater = "", "" // marked once, above
			add.Kind, add.Old = Added, nil
			if err := l.WriteUnified(w, []Change{del, add}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(w, "diff --git a/%s b/%s\n", name, name)
		switch c.Kind {
		case Added:
			fmt.Fprintf(w, "new file mode %s\n", gitMode(c.New))
		case Deleted:
			fmt.Fprintf(w, "deleted file mode %s\n", gitMode(c.Old))
		case Modified, ModeChanged:
			if gitMode(c.Old) != gitMode(c.New) {
				fmt.Fprintf(w, "old mode %s\nnew mode %s\n", gitMode(c.Old), gitMode(c.New))
			}
		}
		if c.Kind == ModeChanged {
			continue
		}
		if c.New != nil && c.New.Type != TypeFile && c.New.Type != TypeSymlink ||
			c.Old != nil && c.Old.Type != TypeFile && c.Old.Type != TypeSymlink {
			fmt.Fprintf(w, "special file (%s) not shown\n", firstType(c))
			continue
		}
		o, n, text, err := l.sides(c)
		if err != nil {
			return err
		}
		a, b := "a/"+name, "b/"+name
		if c.Old == nil {
			a = "/dev/null"
		}
		if c.New == nil {
			b = "/dev/null"
		}
		if !text {
			fmt.Fprintf(w, "Binary files %s and %s differ\n", a, b)
			continue
		}
		if len(o) == 0 && len(n) == 0 {
			continue
		}
		fmt.Fprintf(w, "--- %s\n+++ %s\n", a, b)
		writeHunks(w, splitLines(o), splitLines(n))
	}
	return nil
}

func firstType(c *Change) Type {
	if c.New != nil {
		return c.New.Type
	}
	return c.Old.Type
}

// splitLines splits text into lines, each keeping its newline; a last
// line without one is marked by its missing "\n".
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	line string
}

// lineDiff is Myers' O(ND) diff of two line lists, as edit operations.
func lineDiff(a, b []string) []diffOp {
	n, m := len(a), len(b)
	// Trim the common prefix and suffix: most edits are small.
	pre := 0
	for pre < n && pre < m && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < n-pre && suf < m-pre && a[n-1-suf] == b[m-1-suf] {
		suf++
	}
	var ops []diffOp
	for _, l := range a[:pre] {
		ops = append(ops, diffOp{' ', l})
	}
	ops = append(ops, myers(a[pre:n-suf], b[pre:m-suf])...)
	for _, l := range a[n-suf:] {
		ops = append(ops, diffOp{' ', l})
	}
	return ops
}

func myers(a, b []string) []diffOp {
	n, m := len(a), len(b)
	allOutIn := func() []diffOp {
		var ops []diffOp
		for _, l := range a {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range b {
			ops = append(ops, diffOp{'+', l})
		}
		return ops
	}
	const maxD = 2000 // beyond this many edits, the search costs more than it shows
	if n == 0 || m == 0 {
		return allOutIn()
	}
	max := n + m
	off := max
	v := make([]int, 2*max+2)
	var trace [][]int
	for d := 0; d <= max && d <= maxD; d++ {
		// Keep only the diagonals depth d can read: O(D²) memory, not O(D·N).
		snap := make([]int, 2*d+1)
		copy(snap, v[off-d:off+d+1])
		trace = append(trace, snap)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || k != d && v[off+k-1] < v[off+k+1] {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(a, b, trace, off, d)
			}
		}
	}
	return allOutIn()
}

func backtrack(a, b []string, trace [][]int, off, d int) []diffOp {
	x, y := len(a), len(b)
	var rev []diffOp
	for ; d > 0; d-- {
		v := trace[d] // v[k+d] is diagonal k after depth d-1
		k := x - y
		var pk int
		if k == -d || k != d && v[k-1+d] < v[k+1+d] {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := v[pk+d]
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, diffOp{' ', a[x]})
		}
		if x == px {
			y--
			rev = append(rev, diffOp{'+', b[y]})
		} else {
			x--
			rev = append(rev, diffOp{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, diffOp{' ', a[x]})
	}
	ops := make([]diffOp, len(rev))
	for i := range rev {
		ops[i] = rev[len(rev)-1-i]
	}
	return ops
}

// writeHunks prints ops as unified-diff hunks with 3 lines of context.
func writeHunks(w io.Writer, a, b []string) {
	ops := lineDiff(a, b)
	const ctx = 3
	i := 0
	for i < len(ops) {
		// Find the next change.
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i >= len(ops) {
			break
		}
		start := i - ctx
		if start < 0 {
			start = 0
		}
		end := i
		// Extend while changes are within 2*ctx of each other.
		for {
			for end < len(ops) && ops[end].kind != ' ' {
				end++
			}
			j := end
			for j < len(ops) && ops[j].kind == ' ' && j-end < 2*ctx {
				j++
			}
			if j < len(ops) && ops[j].kind != ' ' {
				end = j
				continue
			}
			break
		}
		stop := end + ctx
		if stop > len(ops) {
			stop = len(ops)
		}
		// Line numbers of the hunk's start.
		oldLine, newLine := 1, 1
		for _, op := range ops[:start] {
			if op.kind != '+' {
				oldLine++
			}
			if op.kind != '-' {
				newLine++
			}
		}
		oldN, newN := 0, 0
		for _, op := range ops[start:stop] {
			if op.kind != '+' {
				oldN++
			}
			if op.kind != '-' {
				newN++
			}
		}
		fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(oldLine, oldN), hunkRange(newLine, newN))
		for _, op := range ops[start:stop] {
			line := op.line
			fmt.Fprintf(w, "%c%s", op.kind, esc.Lines(line))
			if !strings.HasSuffix(line, "\n") {
				fmt.Fprint(w, "\n\\ No newline at end of file\n")
			}
		}
		i = stop
	}
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start-1)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
