package profiles

import (
	"fmt"
	"sort"
	"strings"
)

// Error is a problem in a profile, or in a flag standing for a profile key.
// It prints as FILE:LINE:COL: key: message (or --flag: message), and
// carries a hint for the user.
type Error struct {
	// File is the profile as the user would name it: relative to the
	// working directory when beneath it, "~/…" in the home, "builtin:NAME"
	// for a built-in profile. Empty for flags.
	File      string
	Line, Col int
	// Key is the profile key, or "" for the file as a whole.
	Key string
	// Flag is the command-line flag that set the value, as "--memory".
	Flag string
	Msg  string
	// Tip is advice, printed as "hutch: hint: …".
	Tip string
	// Unsupported marks a valid value whose feature has not landed yet.
	Unsupported bool
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Flag != "":
		b.WriteString(e.Flag + ": ")
	case e.File != "":
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
		}
		b.WriteString(": ")
		if e.Key != "" {
			b.WriteString(e.Key + ": ")
		}
	case e.Key != "":
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Hint is advice for the user.
func (e *Error) Hint() string { return e.Tip }

// Errors are all the problems found, in file order. Load and Spec return
// them as one error; errors.As finds each *Error through Unwrap.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As and the CLI's printer reach each error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errList collects errors, keeping the order of the files they were found
// in and, within a file, the order of lines.
type errList struct {
	errs  Errors
	order map[string]int
	seen  map[string]bool
}

func (l *errList) add(e *Error) {
	if l.seen == nil {
		l.seen, l.order = map[string]bool{}, map[string]int{}
	}
	s := e.Error()
	if l.seen[s] {
		return
	}
	l.seen[s] = true
	if _, ok := l.order[e.File]; !ok {
		l.order[e.File] = len(l.order)
	}
	l.errs = append(l.errs, e)
}

// maxFileErrors bounds the errors reported for one file: a hostile
// profile of thousands of unknown keys gets a screenful, not thousands
// of suggestions.
const maxFileErrors = 50

// full reports whether file has as many errors as are worth reporting.
func (l *errList) full(file string) bool {
	n := 0
	for _, e := range l.errs {
		if e.File == file {
			n++
		}
	}
	return n >= maxFileErrors
}

func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		if a.File != b.File {
			return l.order[a.File] < l.order[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return l.errs
}

// Hints shared by several errors.
const (
	hintTOML      = "profiles are TOML (https://toml.io): strings are quoted, arrays are [\"a\", \"b\"], tables are [section]"
	hintOptional  = `create it, or mark it optional with a leading "?" (as in "?%s") so that it is skipped when missing`
	hintProfiles  = "`hutch profile list` shows the profiles you can name"
	hintKeys      = "docs/profiles.md lists every key; `hutch profile show` prints the effective value of each"
	hintConflicts = "keep one of them"
	hintLimits    = "hutch refuses such a file before parsing it (docs/security.md); a profile's deepest key is env.set.NAME"
)

// Suggest returns the candidate closest to s, or "" when none is close
// enough to be a typo: the CLI's did-you-mean for commands uses it too.
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

// suggest returns the candidate closest to s, or "" when none is close.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := len(s) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyAliases are names other tools use for hutch's keys.
var keyAliases = map[string]string{
	"include": "extends", "inherit": "extends", "inherits": "extends", "extend": "extends", "base": "extends", "from": "extends",
	"readonly": "filesystem.ro", "read_only": "filesystem.ro", "read-only": "filesystem.ro",
	"writable": "filesystem.rw", "read_write": "filesystem.rw", "bind": "filesystem.rw", "binds": "filesystem.rw", "whitelist": "filesystem.rw",
	"mask": "filesystem.hide", "masked": "filesystem.hide", "blacklist": "filesystem.hide", "deny": "filesystem.hide", "hidden": "filesystem.hide",
	"publish": "network.ports", "expose": "network.ports", "hosts": "network.allow", "domains": "network.allow",
	"net": "network.mode", "network": "network.mode",
	"pass": "env.keep", "passthrough": "env.keep", "environment": "env.set", "vars": "env.set", "variables": "env.set",
	"uid": "process.user", "mem": "limits.memory", "memory_limit": "limits.memory",
	"cpus": "limits.cpu", "pids_limit": "limits.pids", "ulimit": "limits.nofile",
	"privileged": "security.nested",
}

// didYouMean suggests the key meant by an unknown key.
func didYouMean(key string) string {
	parts := strings.Split(key, ".")
	last := parts[len(parts)-1]
	// Right name, wrong table.
	for _, k := range schema {
		if !k.FlagOnly && strings.HasSuffix(k.Key, "."+last) {
			return k.Key
		}
	}
	if a, ok := keyAliases[strings.ToLower(last)]; ok {
		return a
	}
	var all []string
	for _, k := range schema {
		if !k.FlagOnly {
			all = append(all, k.Key)
		}
	}
	all = append(all, "extends")
	if len(parts) == 1 {
		all = append(all, sections...)
	}
	return suggest(key, all)
}
