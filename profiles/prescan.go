package profiles

import "fmt"

// A hutch.toml is read in any cloned repository before trust is checked, so
// its text is hostile until proven otherwise. The TOML library's cost grows
// with the square of a key's depth (it copies the whole key path for every
// key beneath it): 30 KB of nested inline tables cost it 1.5 GB, a 32 KB
// dotted key 9.7 GB. prescan reads the text as TOML's lexer would, counts
// what makes the library expensive and refuses a file past these limits,
// at the place it crosses them, before the library sees it. A real profile
// stays far below each: its deepest key is env.set.NAME (3), its deepest
// value an array or an inline table (1).
const (
	// maxNesting bounds arrays and inline tables inside one another.
	maxNesting = 8
	// maxKeyDepth bounds a key's full path: its [table] header, the keys
	// of the inline tables around it and its own dotted parts.
	maxKeyDepth = 8
	// maxItems bounds keys, [table] headers and values in one file.
	maxItems = 4096
)

// limitError is a limit crossed at a byte offset.
type limitError struct {
	off int
	msg string
}

func (e *limitError) Error() string { return e.msg }

// scanCtx is an open array or inline table.
type scanCtx struct {
	table bool // '{'; else '['
	depth int  // key depth of the key that holds it
}

// scanner walks TOML text. It never stops at a syntax error: the parser
// stops there and reports it, and everything before is valid TOML, which
// the scanner reads as the parser does. Where it is unsure it counts more,
// never less.
type scanner struct {
	data   []byte
	i      int
	items  int
	header int // key depth of the current [table]
	stack  []scanCtx
	// key state: reading a key (else a value), its dotted parts so far,
	// and whether a '.' asks for one more.
	inKey   bool
	segs    int
	needSeg bool
}

// prescan returns a *limitError when data crosses a limit, else nil.
func prescan(data []byte) error {
	s := &scanner{data: data}
	s.startKey()
	for s.i < len(data) {
		if err := s.step(); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) startKey() { s.inKey, s.segs, s.needSeg = true, 0, true }

// base is the key depth keys start from here.
func (s *scanner) base() int {
	if n := len(s.stack); n > 0 {
		return s.stack[n-1].depth
	}
	return s.header
}

func (s *scanner) count(at int) error {
	s.items++
	if s.items > maxItems {
		return &limitError{at, fmt.Sprintf("more than %d keys and values; a profile is a screenful", maxItems)}
	}
	return nil
}

func (s *scanner) segment(at int) error {
	if !s.needSeg {
		return nil
	}
	s.segs, s.needSeg = s.segs+1, false
	if s.base()+s.segs > maxKeyDepth {
		return &limitError{at, fmt.Sprintf("a key more than %d levels deep", maxKeyDepth)}
	}
	return s.count(at)
}

func (s *scanner) step() error {
	d, at := s.data, s.i
	c := d[at]
	switch {
	case c == ' ' || c == '\t' || c == '\r':
		s.i++
	case c == '\n':
		s.i++
		if len(s.stack) == 0 {
			s.startKey()
		}
	case c == '#':
		for s.i < len(d) && d[s.i] != '\n' {
			s.i++
		}
	case c == '"' || c == '\'':
		s.str()
		if s.inKey {
			return s.segment(at)
		}
		return s.count(at)
	case c == '[' && s.inKey && len(s.stack) == 0:
		return s.tableHeader()
	case c == '[' || c == '{':
		s.i++
		if len(s.stack) >= maxNesting {
			return &limitError{at, fmt.Sprintf("arrays and inline tables nested more than %d deep", maxNesting)}
		}
		// A value's keys are beneath the key it is assigned to; an
		// array's elements are at the array's own depth.
		depth := s.base()
		if n := len(s.stack); !s.inKey && (n == 0 || s.stack[n-1].table) {
			depth += s.segs
		}
		s.stack = append(s.stack, scanCtx{table: c == '{', depth: depth})
		if c == '{' {
			s.startKey()
		} else {
			s.inKey = false
		}
		return s.count(at)
	case c == ']' || c == '}':
		s.i++
		if n := len(s.stack); n > 0 {
			s.stack = s.stack[:n-1]
		}
		s.inKey = false
	case c == ',':
		s.i++
		if n := len(s.stack); n > 0 && s.stack[n-1].table {
			s.startKey()
		} else {
			s.inKey = false
		}
	case c == '=':
		s.i++
		if !s.inKey {
			return nil
		}
		s.inKey = false
	case c == '.' && s.inKey:
		s.i++
		s.needSeg = true
	default:
		// A bare key, or a bare value (number, date, boolean).
		for s.i < len(d) && !isScanDelim(d[s.i], s.inKey) {
			s.i++
		}
		if s.i == at {
			s.i++
		}
		if s.inKey {
			return s.segment(at)
		}
		return s.count(at)
	}
	return nil
}

func isScanDelim(c byte, key bool) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '#', ',', '[', ']', '{', '}', '=', '"', '\'':
		return true
	case '.':
		return key
	}
	return false
}

// tableHeader reads [a.b] or [[a.b]] to its end of line.
func (s *scanner) tableHeader() error {
	at := s.i
	s.header = 0
	s.segs, s.needSeg = 0, true
	s.i++
	if s.i < len(s.data) && s.data[s.i] == '[' {
		s.i++
	}
	if err := s.count(at); err != nil {
		return err
	}
	for s.i < len(s.data) && s.data[s.i] != '\n' {
		c := s.data[s.i]
		switch {
		case c == ']':
			s.i++
			s.header = s.segs
			// What follows the header on its line is a comment or an
			// error; either way the next line starts a key.
			s.inKey = false
			return nil
		case c == '"' || c == '\'':
			p := s.i
			s.str()
			if err := s.segment(p); err != nil {
				return err
			}
		case c == '.':
			s.i++
			s.needSeg = true
		case c == ' ' || c == '\t':
			s.i++
		default:
			p := s.i
			for s.i < len(s.data) && !isScanDelim(s.data[s.i], true) {
				s.i++
			}
			if s.i == p {
				s.i++
			}
			if err := s.segment(p); err != nil {
				return err
			}
		}
	}
	s.header = s.segs
	return nil
}

// str skips a string of any of TOML's four kinds. A single-line string
// ends at its line's end even when unterminated, as the parser's error does.
func (s *scanner) str() {
	d := s.data
	q := d[s.i]
	if s.i+2 < len(d) && d[s.i+1] == q && d[s.i+2] == q {
		s.i += 3
		for s.i < len(d) {
			switch {
			case q == '"' && d[s.i] == '\\':
				s.i += 2
			case d[s.i] == q && s.i+2 < len(d) && d[s.i+1] == q && d[s.i+2] == q:
				s.i += 3
				// Up to two more quotes belong to the content.
				for n := 0; n < 2 && s.i < len(d) && d[s.i] == q; n++ {
					s.i++
				}
				return
			default:
				s.i++
			}
		}
		return
	}
	s.i++
	for s.i < len(d) && d[s.i] != '\n' {
		switch {
		case q == '"' && d[s.i] == '\\':
			s.i += 2
			continue
		case d[s.i] == q:
			s.i++
			return
		}
		s.i++
	}
}
