package profiles

import (
	"bytes"
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// The TOML library records where every key's value starts but keeps it to
// itself (MetaData has no position accessor in v1.6). Only errors and
// `hutch profile show` need positions, but a hostile profile can ask for
// thousands, so the file is parsed once, on the first position asked for,
// and every position is read from that parse: from the library's own table
// (MetaData.keyInfo, read through reflect), or, should a later version
// rename it, by decoding into a struct built to fail at exactly one key,
// whose ParseError carries the position (one probe per key, remembered).
// TestPositionTable notices when the table cannot be read.

type failAt struct{}

var errProbe = errors.New("hutch position probe")

func (*failAt) UnmarshalTOML(any) error { return errProbe }

// posIndex is one file parsed for positions.
type posIndex struct {
	data   []byte
	md     toml.MetaData
	raw    map[string]any
	ok     bool
	table  map[string]int // toml.Key.String() → value offset; nil if unreadable
	probed map[string]int
	lines  []int                  // offsets where lines start
	items  map[int]map[string]int // array offset → literal → first offset
}

func newPosIndex(data []byte) *posIndex {
	x := &posIndex{data: data, probed: map[string]int{}, items: map[int]map[string]int{}}
	x.lines = append(x.lines, 0)
	for i, c := range data {
		if c == '\n' {
			x.lines = append(x.lines, i+1)
		}
	}
	md, err := toml.Decode(string(data), &x.raw)
	if err != nil {
		return x
	}
	x.md, x.ok = md, true
	x.table = keyInfoTable(&x.md)
	return x
}

// keyInfoTable reads MetaData.keyInfo: map[string]keyInfo{pos Position}.
func keyInfoTable(md *toml.MetaData) map[string]int {
	ki := reflect.ValueOf(md).Elem().FieldByName("keyInfo")
	if ki.Kind() != reflect.Map || ki.Type().Key().Kind() != reflect.String || ki.Type().Elem().Kind() != reflect.Struct {
		return nil
	}
	pos := ki.Type().Elem()
	pf, ok := pos.FieldByName("pos")
	if !ok || pf.Type != reflect.TypeOf(toml.Position{}) {
		return nil
	}
	out := make(map[string]int, ki.Len())
	for it := ki.MapRange(); it.Next(); {
		out[it.Key().String()] = int(it.Value().FieldByIndex(pf.Index).FieldByName("Start").Int())
	}
	return out
}

// valueOffset returns the byte offset where key's value starts, or -1 when
// the library cannot say.
func (x *posIndex) valueOffset(key []string) int {
	if len(key) == 0 || !x.ok {
		return -1
	}
	k := toml.Key(key).String()
	if x.table != nil {
		if off, ok := x.table[k]; ok && off >= 0 && off <= len(x.data) {
			return off
		}
		return -1
	}
	if off, ok := x.probed[k]; ok {
		return off
	}
	x.probed[k] = x.probe(key)
	return x.probed[k]
}

func (x *posIndex) probe(key []string) int {
	t := reflect.TypeOf(failAt{})
	for i := len(key) - 1; i >= 0; i-- {
		t = reflect.StructOf([]reflect.StructField{{
			Name: "F", Type: t, Tag: reflect.StructTag("toml:" + strconv.Quote(key[i])),
		}})
	}
	_, err := toml.Decode(string(x.data), reflect.New(t).Interface())
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Message == errProbe.Error() && pe.Position.Start >= 0 && pe.Position.Start <= len(x.data) {
		return pe.Position.Start
	}
	return -1
}

// lineCol is lineCol from the line table.
func (x *posIndex) lineCol(off int) (line, col int) {
	if off < 0 {
		return 0, 0
	}
	off = min(off, len(x.data))
	i := sort.Search(len(x.lines), func(i int) bool { return x.lines[i] > off }) - 1
	return i + 1, off - x.lines[i] + 1
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
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - (bytes.LastIndexByte(data[:off], '\n') + 1) + 1
	return line, col
}

// itemOffset finds the literal of one element of an array value: the first
// occurrence of raw, quoted as TOML would quote it, in the array at offset
// arr. It falls back to the array itself. The array's string literals are
// indexed once: a scan per element would be quadratic in a long list.
func (x *posIndex) itemOffset(arr int, raw string) int {
	if arr < 0 {
		return arr
	}
	lits, ok := x.items[arr]
	if !ok {
		lits = arrayLiterals(x.data, arr)
		x.items[arr] = lits
	}
	best := -1
	for _, lit := range []string{strconv.Quote(raw), "'" + raw + "'"} {
		if k, ok := lits[lit]; ok && (best < 0 || k < best) {
			best = k
		}
	}
	if best < 0 {
		return arr
	}
	return best
}

// arrayLiterals maps each string literal in the array value at off (its
// first element), as written, to where it first occurs.
func arrayLiterals(data []byte, off int) map[string]int {
	out := map[string]int{}
	s := &scanner{data: data, i: off}
	depth := 0
	for s.i < len(data) {
		switch c := data[s.i]; c {
		case '"', '\'':
			at := s.i
			s.str()
			lit := string(data[at:min(s.i, len(data))])
			if _, ok := out[lit]; !ok {
				out[lit] = at
			}
			continue
		case '#':
			for s.i < len(data) && data[s.i] != '\n' {
				s.i++
			}
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		}
		s.i++
		if depth < 0 {
			break
		}
	}
	return out
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
func (x *posIndex) valueIsTable(key []string) bool {
	var v any = x.raw
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
