package profiles

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// SourceKind says what set a value.
type SourceKind string

const (
	// FromDefault: nothing set the value; it is hutch's default.
	FromDefault SourceKind = "default"
	// FromBuiltin: a built-in profile, embedded in hutch.
	FromBuiltin SourceKind = "built-in"
	// FromUser: your own configuration (config.toml, profiles/NAME.toml, or a
	// file they extend).
	FromUser SourceKind = "user"
	// FromProject: the project's hutch.toml (or --profile PATH) and the files
	// it extends by path.
	FromProject SourceKind = "project"
	// FromFlag: a command-line flag.
	FromFlag SourceKind = "flag"
)

// Source is where a value was set.
type Source struct {
	Kind SourceKind
	// Name is the profile's name (built-in and user profiles) or the flag,
	// as "--memory".
	Name string
	// File is the profile as the user would name it (see Error.File); Path
	// is its absolute path. Both are empty for built-ins and flags.
	File, Path string

	pos   *posRef
	layer int // layerBase, layerProject or layerFlags
	via   *Source
}

// Layers, in order of precedence.
const (
	layerBase    = iota // built-in default and the user's own configuration
	layerProject        // the project's profile and what it extends
	layerFlags
)

// posRef finds a value's position on demand: only errors and `profile show`
// need it, and computing it costs a parse per key.
type posRef struct {
	f         *file
	key       []string
	raw       string // for an array element: its literal
	done      bool
	line, col int
}

// Position returns the 1-based line and column where the value was set, or
// zeros for flags and defaults.
func (s Source) Position() (line, col int) {
	r := s.pos
	if r == nil || r.f == nil {
		return 0, 0
	}
	if !r.done {
		r.done = true
		x := r.f.positions()
		off := x.valueOffset(r.key)
		for k := len(r.key) - 1; off < 0 && k > 0; k-- {
			off = x.valueOffset(r.key[:k])
		}
		if off >= 0 {
			switch {
			case r.raw != "":
				off = x.itemOffset(off, r.raw)
			case !x.valueIsTable(r.key) && startsKey(r.f.data, off):
				// An inline table's entries are located at their keys.
			default:
				off = keyOffset(r.f.data, off)
			}
			r.line, r.col = x.lineCol(off)
		}
	}
	return r.line, r.col
}

// Where is the value's location: "hutch.toml:3:8", "builtin:npm:4:1",
// "--memory", or "default".
func (s Source) Where() string {
	switch s.Kind {
	case FromFlag:
		return s.Name
	case FromDefault, "":
		return "default"
	}
	f := s.File
	if s.Kind == FromBuiltin {
		f = "builtin:" + s.Name
	}
	if l, c := s.Position(); l > 0 {
		return fmt.Sprintf("%s:%d:%d", f, l, c)
	}
	return f
}

// String describes the source for people: "hutch.toml:3:8",
// "built-in npm", "--memory", "default".
func (s Source) String() string {
	switch s.Kind {
	case FromBuiltin:
		return "built-in " + s.Name
	case FromFlag:
		return s.Name
	case FromDefault, "":
		return "default"
	}
	if l, _ := s.Position(); l > 0 {
		return s.File + ":" + strconv.Itoa(l)
	}
	return s.File
}

// MarshalJSON writes the source with its position resolved.
func (s Source) MarshalJSON() ([]byte, error) {
	l, c := s.Position()
	v := struct {
		Kind SourceKind `json:"kind"`
		Name string     `json:"name,omitempty"`
		File string     `json:"file,omitempty"`
		Line int        `json:"line,omitempty"`
		Col  int        `json:"col,omitempty"`
	}{s.Kind, s.Name, s.Path, l, c}
	if s.Kind == FromFlag {
		v.Name = ""
		v.File = ""
		v.Name = s.Name
	}
	return json.Marshal(v)
}

// errorAt builds an Error located at s.
func (s Source) errorAt(key, msg, tip string) *Error {
	e := &Error{Key: key, Msg: msg, Tip: tip}
	switch s.Kind {
	case FromFlag:
		e.Flag = s.Name
	case FromBuiltin:
		e.File = "builtin:" + s.Name
		e.Line, e.Col = s.Position()
	case FromUser, FromProject:
		e.File = s.File
		e.Line, e.Col = s.Position()
	}
	return e
}
