package profiles

import (
	"fmt"
	"path/filepath"
	"strings"
)

// expander expands variables and paths in one profile's values.
type expander struct {
	lookup  func(string) (string, bool)
	home    string // the caller's home ($HOME)
	project string // the project directory, ${PROJECT}
	dir     string // relative paths are relative to this (the profile's directory)
}

// vars expands $NAME, ${NAME}, ${NAME:-default} (default used when NAME is
// unset or empty, and itself expanded) and $$ (a literal $). HOME and
// PROJECT are always defined. It returns the names it read, so that trust
// can tell when a project profile reads a secret variable.
func (x *expander) vars(s string) (string, []string, error) {
	var b strings.Builder
	var refs []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", refs, fmt.Errorf("%q ends with a lone $ (write $$ for a dollar sign)", s)
		}
		switch n := s[i+1]; {
		case n == '$':
			b.WriteByte('$')
			i++
		case n == '{':
			// Find the matching brace, allowing nesting in the default.
			depth, j := 1, i+2
			for ; j < len(s) && depth > 0; j++ {
				switch s[j] {
				case '{':
					depth++
				case '}':
					depth--
				}
			}
			if depth != 0 {
				return "", refs, fmt.Errorf("%q has an unclosed ${", s)
			}
			body := s[i+2 : j-1]
			name, def, hasDef := strings.Cut(body, ":-")
			if !validVarName(name) {
				return "", refs, fmt.Errorf("%q: ${%s} is not a variable name", s, body)
			}
			refs = append(refs, name)
			v, ok := x.get(name)
			if (!ok || v == "") && hasDef {
				d, drefs, err := x.vars(def)
				refs = append(refs, drefs...)
				if err != nil {
					return "", refs, err
				}
				v, ok = d, true
			}
			if !ok {
				return "", refs, &unsetVarError{name}
			}
			b.WriteString(v)
			i = j - 1
		case isVarStart(n):
			j := i + 1
			for j < len(s) && isVarChar(s[j]) {
				j++
			}
			name := s[i+1 : j]
			refs = append(refs, name)
			v, ok := x.get(name)
			if !ok {
				return "", refs, &unsetVarError{name}
			}
			b.WriteString(v)
			i = j - 1
		default:
			return "", refs, fmt.Errorf("%q: a $ must start a variable, as in ${NAME} (write $$ for a dollar sign)", s)
		}
	}
	return b.String(), refs, nil
}

type unsetVarError struct{ name string }

func (e *unsetVarError) Error() string { return "$" + e.name + " is not set" }
func (e *unsetVarError) Hint() string {
	return fmt.Sprintf("set it, or give a default: ${%s:-VALUE}", e.name)
}

func (x *expander) get(name string) (string, bool) {
	switch name {
	case "HOME":
		return x.home, true
	case "PROJECT":
		return x.project, true
	}
	if x.lookup == nil {
		return "", false
	}
	return x.lookup(name)
}

func isVarStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isVarChar(c byte) bool { return isVarStart(c) || c >= '0' && c <= '9' }

func validVarName(s string) bool {
	if s == "" || !isVarStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isVarChar(s[i]) {
			return false
		}
	}
	return true
}

// path expands s into an absolute, clean path: variables first, then a
// leading ~, then relative paths against the profile's directory.
func (x *expander) path(s string) (string, []string, error) {
	if s == "" {
		return "", nil, fmt.Errorf("empty path")
	}
	v, refs, err := x.vars(s)
	if err != nil {
		return "", refs, err
	}
	switch {
	case v == "~":
		v = x.home
	case strings.HasPrefix(v, "~/"):
		v = filepath.Join(x.home, v[2:])
	case strings.HasPrefix(v, "~"):
		return "", refs, fmt.Errorf("%q: only your own home (~ or ~/…) can be named with ~", s)
	case v == "":
		return "", refs, fmt.Errorf("%q expands to an empty path", s)
	case !filepath.IsAbs(v):
		v = filepath.Join(x.dir, v)
	}
	return filepath.Clean(v), refs, nil
}

// tilde writes p, an absolute path, the way the sandbox Spec wants paths in
// the home: "~/…", so that NewPlan resolves them against the real home.
func tilde(p, home string) string {
	if home == "" || home == "/" {
		return p
	}
	if p == home {
		return "~"
	}
	if rel, ok := strings.CutPrefix(p, home+"/"); ok {
		return "~/" + rel
	}
	return p
}

// within reports whether p is dir or beneath it.
func within(dir, p string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// imageRoot expands the path of a local image source in a filesystem.root
// ("image:oci-layout:./build/layout:v1") against the profile's directory,
// as a team's hutch.toml means it; registry references stay as they are.
func (x *expander) imageRoot(s string) (string, []string, error) {
	if dir, ok := strings.CutPrefix(s, "dir:"); ok && dir != "" {
		// A root filesystem directory, relative to the profile too.
		abs, refs, err := x.path(dir)
		if err != nil {
			return "", refs, err
		}
		return "dir:" + abs, refs, nil
	}
	ref, ok := strings.CutPrefix(s, "image:")
	if !ok {
		return s, nil, nil
	}
	for _, t := range []string{"oci-layout:", "oci-archive:", "docker-archive:"} {
		rest, ok := strings.CutPrefix(ref, t)
		if !ok || rest == "" {
			continue
		}
		p, tag := rest, ""
		// The tag follows the last ':' after the last '/'.
		if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
			p, tag = rest[:i], rest[i:]
		}
		abs, refs, err := x.path(p)
		if err != nil {
			return "", refs, err
		}
		return "image:" + t + abs + tag, refs, nil
	}
	return s, nil, nil
}

// localImagePath is the file or directory a filesystem.root of a local
// image source reads ("" for the host or a registry reference).
func localImagePath(root string) string {
	if dir, ok := strings.CutPrefix(root, "dir:"); ok {
		return filepath.Clean(dir)
	}
	ref, ok := strings.CutPrefix(root, "image:")
	if !ok {
		return ""
	}
	for _, t := range []string{"oci-layout:", "oci-archive:", "docker-archive:"} {
		rest, ok := strings.CutPrefix(ref, t)
		if !ok {
			continue
		}
		if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
			rest = rest[:i]
		}
		return filepath.Clean(rest)
	}
	return ""
}
