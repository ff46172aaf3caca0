package profiles

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// The TOML library records where every key's value starts but keeps it to
// itself (MetaData has no position accessor in v1.6). It does report that
// position in a ParseError when an Unmarshaler fails, so keyOffset decodes
// the file once more into a struct built to fail at exactly one key. Only
// errors and `hutch profile show` need positions, so the cost (one parse of
// a small file per key) is paid only then.

type failAt struct{}

var errProbe = errors.New("hutch position probe")

func (*failAt) UnmarshalTOML(any) error { return errProbe }

// valueOffset returns the byte offset where key's value starts in data, or
// -1 when the library cannot say (keys inside arrays of tables).
func valueOffset(data []byte, key []string) int {
	if len(key) == 0 {
		return -1
	}
	t := reflect.TypeOf(failAt{})
	for i := len(key) - 1; i >= 0; i-- {
		t = reflect.StructOf([]reflect.StructField{{
			Name: "F", Type: t, Tag: reflect.StructTag("toml:" + strconv.Quote(key[i])),
		}})
	}
	_, err := toml.Decode(string(data), reflect.New(t).Interface())
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Message == errProbe.Error() && pe.Position.Start >= 0 && pe.Position.Start <= len(data) {
		return pe.Position.Start
	}
	return -1
}

// keyOffset turns a value's offset into the offset of the key that names it:
// the start of `a.b` in `a.b = 1`, of `x` in `{ x = 1 }`, or of the name in a
// `[table]` header.
func keyOffset(data []byte, v int) int {
	if v < 0 || v > len(data) {
		return v
	}
	i := v - 1
	skip := func(set string, max int) {
		for n := 0; i >= 0 && n < max && strings.IndexByte(set, data[i]) >= 0; n++ {
			i--
		}
	}
	// An array's or inline table's value starts at its first element,
	// possibly lines below the '['; a multi-line string's after its
	// opening quotes.
	skip(" \t\r\n[{", 1<<30)
	skip(`"'`, 3)
	skip(" \t", 1<<30)
	if i < 0 || data[i] != '=' {
		// A [table] header: the value offset is its '['.
		k := v
		for k < len(data) && (data[k] == '[' || data[k] == ' ' || data[k] == '\t') {
			k++
		}
		return k
	}
	i--
	skip(" \t", 1<<30)
	for i >= 0 {
		c := data[i]
		if c == '"' || c == '\'' {
			j := i - 1
			for j >= 0 && data[j] != c && data[j] != '\n' {
				j--
			}
			if j < 0 || data[j] == '\n' {
				break
			}
			i = j - 1
			continue
		}
		if c == '\n' || c == '{' || c == ',' {
			break
		}
		i--
	}
	k := i + 1
	for k < len(data) && (data[k] == ' ' || data[k] == '\t') {
		k++
	}
	return k
}

// lineCol converts a byte offset to a 1-based line and column (in bytes,
// as compilers count).
func lineCol(data []byte, off int) (line, col int) {
	if off < 0 {
		return 0, 0
	}
	if off > len(data) {
		off = len(data)
	}
	line = 1 + strings.Count(string(data[:off]), "\n")
	col = off - (strings.LastIndexByte(string(data[:off]), '\n') + 1) + 1
	return line, col
}

// itemOffset finds the literal of one element of an array value: the first
// occurrence of raw, quoted as TOML would quote it, at or after the array's
// offset. It falls back to the array itself.
func itemOffset(data []byte, arr int, raw string) int {
	if arr < 0 {
		return arr
	}
	s := string(data[arr:])
	best := -1
	for _, lit := range []string{strconv.Quote(raw), "'" + raw + "'"} {
		if k := strings.Index(s, lit); k >= 0 && (best < 0 || k < best) {
			best = k
		}
	}
	if best < 0 {
		return arr
	}
	return arr + best
}

// startsKey reports whether a key (bare, quoted or dotted) followed by '='
// starts at off.
func startsKey(data []byte, off int) bool {
	i := off
	n := 0
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(data) && data[j] != c && data[j] != '\n' {
				j++
			}
			if j >= len(data) || data[j] != c {
				return false
			}
			i, n = j+1, n+1
		case c == '_' || c == '-' || c == '.' || c == ' ' || c == '\t' ||
			c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			i, n = i+1, n+1
		case c == '=':
			return n > 0
		default:
			return false
		}
	}
	return false
}

// valueIsTable reports whether the value at key is a table.
func valueIsTable(data []byte, key []string) bool {
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		return false
	}
	var v any = m
	for _, k := range key {
		t, ok := v.(map[string]any)
		if !ok {
			return false
		}
		v = t[k]
	}
	_, ok := v.(map[string]any)
	return ok
}
