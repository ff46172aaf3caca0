package profiles

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hutch-sandbox/hutch/internal/esc"
)

// A profile's strings end up in error messages, `hutch profile show`, the
// sandbox's environment and argv, mount paths and hostnames. Text that
// would print as something else (a newline forging an error line, U+202E
// reversing a name, an escape sequence retitling the terminal) or that the
// kernel would cut short (a NUL) is refused where it is written, with its
// position, rather than at start or never.

// textProblem says what is wrong with s as profile text, or "". A tab is
// fine in values (argv, env values), never in names. Invalid UTF-8 is fine
// in paths given as flags: a path is bytes (TOML text is UTF-8 anyway).
func textProblem(s string, name, path bool) string {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			if !path {
				return fmt.Sprintf("byte %d is not UTF-8", i)
			}
		case r == '\t' && !name:
		case esc.Unsafe(r):
			return fmt.Sprintf("byte %d is %s", i, runeKind(r))
		}
		i += n
	}
	return ""
}

func runeKind(r rune) string {
	u := fmt.Sprintf("U+%04X", r)
	switch {
	case r == 0:
		return u + " (NUL)"
	case r == '\n':
		return u + " (a newline)"
	case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x61c:
		return u + ", a bidirectional control"
	case unicode.IsControl(r):
		return u + ", a control character"
	case unicode.Is(unicode.Cf, r):
		return u + ", an invisible format character"
	}
	return u + ", which does not print as itself"
}

const hintText = "profiles hold printable text: no control characters (newlines, NUL, escape sequences), no bidirectional or invisible format characters"

// checkText reports every key and string value in a decoded file that is
// not printable text; it returns false when it found one.
func (l *loader) checkText(f *file, raw map[string]any) bool {
	ok := true
	var walk func(key []string, v any)
	walk = func(key []string, v any) {
		where := strings.Join(key, ".")
		switch x := v.(type) {
		case string:
			if p := textProblem(x, false, false); p != "" {
				l.errs.add(f.source(key, "").errorAt(where, fmt.Sprintf("the value %s: %s", esc.Quote(x), p), hintText))
				ok = false
			}
		case []any:
			for _, e := range x {
				if s, isStr := e.(string); isStr {
					if p := textProblem(s, false, false); p != "" {
						l.errs.add(f.source(key, s).errorAt(where, fmt.Sprintf("the value %s: %s", esc.Quote(s), p), hintText))
						ok = false
					}
					continue
				}
				walk(key, e)
			}
		case []map[string]any:
			for _, e := range x {
				walk(key, e)
			}
		case map[string]any:
			names := make([]string, 0, len(x))
			for k := range x {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				sub := append(append([]string(nil), key...), k)
				if p := textProblem(k, true, false); p != "" {
					l.errs.add(f.source(sub, "").errorAt(strings.Join(key, "."), fmt.Sprintf("the key %s: %s", esc.Quote(k), p), hintText))
					ok = false
					continue
				}
				walk(sub, x[k])
			}
		}
	}
	walk(nil, raw)
	return ok
}
