package profiles

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// item is one element of a list key, or one entry of env.set.
type item struct {
	// Value is what goes into the Spec: paths as "~/…" in the home, else
	// absolute; other strings as written (env.set: the expanded value).
	Value string
	// Abs is the absolute path, for path kinds.
	Abs string
	// Name is the variable, for env.set.
	Name string
	// Raw is the element as written in the file.
	Raw      string
	Optional bool
	// Create (a leading "+", filesystem.rw only) makes a missing
	// directory on the host before the run binds it: a tool's cache that
	// should persist from the first run on.
	Create bool
	// Target and Mode are a [[filesystem.bind]]'s (Abs is its source).
	Target, Mode string
	Src          Source
	refs         []string // variables the value read
}

// setting is one key's value: a scalar, a list, or env.set's table.
type setting struct {
	info  *KeyInfo
	set   bool
	value any // scalars: the Spec field's Go type
	src   Source
	refs  []string
	items []item
	env   map[string]item
	svcs  map[string]*service // the setting "services" (services.go)
}

func (s *setting) clone() *setting {
	c := *s
	c.items = append([]item(nil), s.items...)
	if s.env != nil {
		c.env = make(map[string]item, len(s.env))
		for k, v := range s.env {
			c.env[k] = v
		}
	}
	if s.svcs != nil {
		c.svcs = make(map[string]*service, len(s.svcs))
		for k, v := range s.svcs {
			c.svcs[k] = v
		}
	}
	return &c
}

func cloneSettings(m map[string]*setting) map[string]*setting {
	out := make(map[string]*setting, len(m))
	for k, v := range m {
		out[k] = v.clone()
	}
	return out
}

// merge applies one file's (or flag's) values over dst: lists append
// (skipping values already there), env.set merges by name, scalars replace.
func merge(dst map[string]*setting, vals map[string]*setting) {
	for _, info := range schema {
		v := vals[info.Key]
		if v == nil || !v.set {
			continue
		}
		d := dst[info.Key]
		if d == nil {
			dst[info.Key] = v.clone()
			continue
		}
		switch {
		case info.kind.isList():
			// A set, not a scan per item: a hostile list of thousands
			// would make this quadratic.
			have := make(map[string]bool, len(d.items))
			for _, it := range d.items {
				have[it.Value] = true
			}
			for _, it := range v.items {
				if !have[it.Value] {
					have[it.Value] = true
					d.items = append(d.items, it)
				}
			}
		case info.kind == kEnvMap:
			if d.env == nil {
				d.env = map[string]item{}
			}
			for k, e := range v.env {
				d.env[k] = e
			}
		default:
			d.value, d.src, d.refs = v.value, v.src, v.refs
		}
		d.set = true
	}
	mergeServices(dst, vals)
}

// extendsRef is one element of a file's extends.
type extendsRef struct {
	name string
	src  Source
}

// parse decodes one file, checking keys, types and values. Errors go to
// l.errs; what parsed cleanly is returned.
func (l *loader) parse(f *file) (map[string]*setting, []extendsRef) {
	var lim *limitError
	if errors.As(prescan(f.data), &lim) {
		e := &Error{File: f.label(), Msg: lim.msg, Tip: hintLimits}
		e.Line, e.Col = lineCol(f.data, lim.off)
		l.errs.add(e)
		return nil, nil
	}
	var raw map[string]any
	if _, err := toml.Decode(string(f.data), &raw); err != nil {
		var pe toml.ParseError
		e := &Error{File: f.label(), Msg: "malformed TOML: " + err.Error(), Tip: hintTOML}
		if errors.As(err, &pe) {
			e.Msg = "malformed TOML: " + pe.Message
			if pe.Position.Start > 0 && pe.Position.Start <= len(f.data) {
				e.Line, e.Col = lineCol(f.data, pe.Position.Start)
			} else {
				e.Line, e.Col = pe.Position.Line, pe.Position.Col
			}
			if e.Line == 0 {
				e.Line, e.Col = 1, 1
			}
		}
		l.errs.add(e)
		return nil, nil
	}
	if !l.checkText(f, raw) {
		return nil, nil
	}
	vals := map[string]*setting{}
	var refs []extendsRef
	bad := func(key []string, raw, msg, tip string) {
		if l.errs.full(f.label()) {
			return
		}
		l.errs.add(f.source(key, raw).errorAt(strings.Join(key, "."), msg, tip))
	}
	for _, top := range sortedKeys(raw) {
		v := raw[top]
		if top == "extends" {
			refs = l.parseExtends(f, v, bad)
			continue
		}
		if top == "services" {
			if s := l.parseServices(f, v, bad); s != nil {
				vals["services"] = s
			}
			continue
		}
		if !isSection(top) {
			if l.errs.full(f.label()) {
				continue // and spare the suggestion's cost
			}
			msg := fmt.Sprintf("unknown key %q", top)
			if _, isTable := v.(map[string]any); isTable {
				msg = fmt.Sprintf("unknown table [%s]", top)
			}
			bad([]string{top}, "", msg, unknownTip(top))
			continue
		}
		table, ok := v.(map[string]any)
		if !ok {
			bad([]string{top}, "", fmt.Sprintf("expected a table [%s], not %s", top, tomlType(v)),
				fmt.Sprintf("write the %s keys under a [%s] line", top, top))
			continue
		}
		for _, leaf := range sortedKeys(table) {
			key := top + "." + leaf
			info := schemaByKey[key]
			if info == nil {
				if l.errs.full(f.label()) {
					continue
				}
				bad([]string{top, leaf}, "", fmt.Sprintf("unknown key %q", key), unknownTip(key))
				continue
			}
			if info.FlagOnly {
				bad([]string{top, leaf}, "", "cannot be set in a profile: a profile's project is the directory of its hutch.toml",
					"to run on another directory, use hutch run --project DIR")
				continue
			}
			if s := l.parseValue(f, info, table[leaf], bad); s != nil {
				vals[key] = s
			}
		}
	}
	return vals, refs
}

func isSection(s string) bool {
	for _, x := range sections {
		if x == s {
			return true
		}
	}
	return false
}

func unknownTip(key string) string {
	if s := didYouMean(key); s != "" {
		if isSection(s) {
			return fmt.Sprintf("did you mean [%s]?", s)
		}
		return fmt.Sprintf("did you mean %s?", s)
	}
	return hintKeys
}

func (l *loader) parseExtends(f *file, v any, bad func([]string, string, string, string)) []extendsRef {
	key := []string{"extends"}
	var names []string
	switch x := v.(type) {
	case string:
		names = []string{x}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				bad(key, "", "expected profile names or paths (strings), not "+tomlType(e), "write extends = [\"npm\", \"./base.toml\"]")
				return nil
			}
			names = append(names, s)
		}
	default:
		bad(key, "", "expected an array of profile names or paths, not "+tomlType(v), "write extends = [\"npm\"]")
		return nil
	}
	var refs []extendsRef
	for _, n := range names {
		refs = append(refs, extendsRef{name: n, src: f.source(key, n)})
	}
	return refs
}

// parseValue reads one key's value from a file.
func (l *loader) parseValue(f *file, info *KeyInfo, v any, bad func([]string, string, string, string)) *setting {
	key := strings.Split(info.Key, ".")
	leaf := key[len(key)-1]
	s := &setting{info: info, set: true, src: f.source(key, "")}
	switch k := info.kind; {
	case k == kTables:
		s.items = l.bindTables(f, info, v, bad)
		if s.items == nil {
			return nil
		}
	case k.isList():
		arr, ok := v.([]any)
		if !ok {
			tip := ""
			if str, isStr := v.(string); isStr {
				tip = fmt.Sprintf("a list, even of one: %s = [%s]", leaf, strconv.Quote(str))
			}
			bad(key, "", fmt.Sprintf("expected an array of %s, not %s", elemNoun(k), tomlType(v)), tip)
			return nil
		}
		for _, e := range arr {
			str, ok := e.(string)
			if !ok {
				bad(key, "", fmt.Sprintf("expected an array of %s, but it holds %s", elemNoun(k), tomlType(e)), "quote each element: "+info.Example)
				return nil
			}
			it, err := l.listItem(f, k, str, f.x)
			it.Src = f.source(key, str)
			if err != nil {
				l.errs.add(it.Src.errorAt(info.Key, err.Error(), errTip(err)))
				continue
			}
			s.items = append(s.items, it)
		}
	case k == kEnvMap:
		table, ok := v.(map[string]any)
		if !ok {
			bad(key, "", "expected a table of NAME = \"value\", not "+tomlType(v), "write set = { NAME = \"value\" }, or the entries under an [env.set] line")
			return nil
		}
		s.env = map[string]item{}
		for _, name := range sortedKeys(table) {
			ek := append(append([]string(nil), key...), name)
			var str string
			switch x := table[name].(type) {
			case string:
				str = x
			case int64:
				str = strconv.FormatInt(x, 10)
			case bool:
				str = strconv.FormatBool(x)
			default:
				bad(ek, "", fmt.Sprintf("%s: expected a string, not %s", name, tomlType(x)), fmt.Sprintf("quote it: %s = \"…\"", name))
				continue
			}
			val, refs, err := f.x.vars(str)
			src := f.source(ek, "")
			if err != nil {
				l.errs.add(src.errorAt(info.Key, name+": "+err.Error(), errTip(err)))
				continue
			}
			s.env[name] = item{Name: name, Value: val, Raw: str, Src: src, refs: refs}
		}
	case k == kArgv:
		var argv []string
		switch x := v.(type) {
		case string:
			a, err := splitArgv(x)
			if err != nil {
				bad(key, "", err.Error(), "or write it as an array: "+info.Example)
				return nil
			}
			argv = a
		case []any:
			for _, e := range x {
				str, ok := e.(string)
				if !ok {
					bad(key, "", "expected strings, but the array holds "+tomlType(e), info.Example)
					return nil
				}
				argv = append(argv, str)
			}
		default:
			bad(key, "", "expected a command (a string or an array of strings), not "+tomlType(v), info.Example)
			return nil
		}
		s.value = argv
	case k == kRoot:
		str, ok := v.(string)
		if !ok {
			bad(key, "", "expected a string, not "+tomlType(v), info.Example)
			return nil
		}
		val, refs, err := f.x.imageRoot(str)
		if err != nil {
			bad(key, "", err.Error(), errTip(err))
			return nil
		}
		s.value, s.refs = val, refs
	case k == kSeccomp:
		str, ok := v.(string)
		if !ok {
			bad(key, "", "expected a string, not "+tomlType(v), info.Example)
			return nil
		}
		s.value = str
		if str != "default" && str != "off" {
			abs, refs, err := f.x.path(str)
			if err != nil {
				bad(key, "", err.Error(), errTip(err))
				return nil
			}
			s.value, s.refs = tilde(abs, f.x.home), refs
		}
	default:
		if _, isStr := v.(string); isStr && k == kBool {
			bad(key, "", typeErr("true or false", v).Error(), "for example: "+info.Example)
			return nil
		}
		val, err := parseScalar(k, v)
		if err != nil {
			bad(key, "", err.Error(), "for example: "+info.Example)
			return nil
		}
		s.value = val
	}
	return s
}

func elemNoun(k kind) string {
	switch k {
	case kBinds, kPaths:
		return "paths"
	case kGlobs:
		return "variable names or patterns"
	}
	return "strings"
}

// listItem expands one list element.
func (l *loader) listItem(f *file, k kind, raw string, x expander) (item, error) {
	it := item{Raw: raw, Value: raw}
	switch k {
	case kBinds, kPaths:
		s := raw
		if k == kBinds {
			s, it.Optional = strings.CutPrefix(raw, "?")
			if !it.Optional {
				s, it.Create = strings.CutPrefix(raw, "+")
			}
		}
		abs, refs, err := x.path(s)
		it.refs = refs
		if err != nil {
			return it, err
		}
		it.Abs, it.Value = abs, tilde(abs, x.home)
	}
	return it, nil
}

// errTip returns an error's own hint, if it has one.
func errTip(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// fieldErrors unpacks Spec.Validate's joined errors.
func fieldErrors(err error) []*sandbox.FieldError {
	if err == nil {
		return nil
	}
	var out []*sandbox.FieldError
	var walk func(error)
	walk = func(e error) {
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range m.Unwrap() {
				walk(c)
			}
			return
		}
		var fe *sandbox.FieldError
		if errors.As(e, &fe) {
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}

// blame turns a FieldError into an Error at the place that set the value:
// for lists and env.set, the element the message quotes.
func blame(s *setting, fe *sandbox.FieldError) *Error {
	src, found := s.src, false
	for _, it := range s.items {
		if strings.Contains(fe.Msg, strconv.Quote(it.Value)) {
			src, found = it.Src, true
			break
		}
	}
	for _, it := range sortedItems(s.env) {
		if !found && strings.Contains(fe.Msg, strconv.Quote(it.Name)) {
			src, found = it.Src, true
		}
	}
	if !found && src.Kind == "" && len(s.items) > 0 {
		src = s.items[0].Src
	}
	e := src.errorAt(fe.Key, fe.Msg, keyTip(s.info, fe))
	e.Unsupported = fe.Unsupported
	return e
}

func keyTip(info *KeyInfo, fe *sandbox.FieldError) string {
	if fe.Unsupported {
		return "this lands in a later version of hutch; remove it for now (docs/profiles.md says what works today)"
	}
	if info == nil {
		return ""
	}
	if strings.Contains(fe.Msg, "whole filesystem") {
		return "name the directories the command needs; / is the host's whole filesystem"
	}
	return info.Key + ": " + info.Doc
}

// fill sets spec's key-tagged fields from settings; include selects the
// list items and env entries to take (for optional paths that are missing).
func fill(spec *sandbox.Spec, vals map[string]*setting, include func(abs string) bool) {
	walkSpec(reflectValue(spec), func(key string, fv reflectV) {
		s := vals[key]
		if s == nil || !s.set {
			return
		}
		switch k := s.info.kind; {
		case k == kTables:
			var out []sandbox.Bind
			for _, it := range s.items {
				out = append(out, sandbox.Bind{Source: tilde(it.Abs, ""), Target: it.Target, Mode: it.Mode})
			}
			setField(fv, out)
		case k.isList():
			var out []string
			for _, it := range s.items {
				if it.Optional && !it.Create && !include(it.Abs) {
					continue
				}
				out = append(out, it.Value)
			}
			setField(fv, out)
		case k == kEnvMap:
			m := map[string]string{}
			for n, e := range s.env {
				m[n] = e.Value
			}
			setField(fv, m)
		default:
			setField(fv, s.value)
		}
	})
}

// exists reports whether a path exists (without following a final symlink).
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// sortedItems returns env.set's entries by name.
func sortedItems(m map[string]item) []item {
	out := make([]item, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
