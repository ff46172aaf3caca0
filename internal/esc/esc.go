// Package esc makes text from untrusted places safe to print.
//
// File names made inside a sandbox, hostnames its programs asked for and
// values in a cloned repository's hutch.toml reach the user's terminal and
// logs. Printed raw, "\x1b]0;title\x07" retitles the terminal, "\x1b[2J"
// clears it, a newline forges a line of hutch's own output and U+202E
// (right-to-left override) makes "txt.exe" read as "exe.txt". Text is the
// one function every such string goes through on its way to a person;
// JSON output needs none of it (encoding/json escapes controls itself).
package esc

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe reports whether r may not be printed as itself: controls (C0,
// DEL, C1), format characters (among them the bidi controls U+202A–U+202E
// and U+2066–U+2069, and zero-width ones), line and paragraph separators,
// and anything else that is not a graphic character or a plain space.
func Unsafe(r rune) bool {
	return r != ' ' && !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

// Text returns s as it may be printed: each unsafe rune written as a Go
// escape (\n, \x1b, \u202e), each byte of invalid UTF-8 as \xNN, and a
// backslash as \\ so that the result reads one way only. Safe text is
// returned as it is.
func Text(s string) string {
	if !needs(s) {
		return s
	}
	return escape(s, true)
}

func escape(s string, backslash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case r == '\\' && backslash:
			b.WriteString(`\\`)
		case !backslash && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case Unsafe(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Lines is Text that leaves backslashes, newlines and tabs alone: for a
// message hutch wrote itself (an error, which may span lines), where values
// are already quoted with escapes, as the last guard against one that was
// not.
func Lines(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 && s[i] != '\n' && s[i] != '\t' || s[i] >= 0x7f {
			return escape(s, false)
		}
	}
	return s
}

// Quote is s in double quotes, escaped as by strconv.Quote, which also
// escapes every unsafe rune.
func Quote(s string) string { return strconv.Quote(s) }

func needs(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '\\' {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == '\\' || Unsafe(r) {
			return true
		}
		i += n
	}
	return false
}

// First returns the byte offset of the first unsafe rune in s, or of its
// first byte of invalid UTF-8, or -1.
func First(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
		if Unsafe(r) {
			return i
		}
	}
	return -1
}
