package profiles

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// [[filesystem.bind]]: a host path shown at another path inside.
//
//	[[filesystem.bind]]
//	source = "~/datasets"
//	target = "/data"
//	mode = "ro"
//
// Each is one item of the key's list: Abs is the source, Target and Mode
// the rest, and Value "SOURCE -> TARGET (MODE)" (what profile show prints,
// and what merging compares). Sources are checked as rw and ro binds are
// (checkBinds) and judged as they are by trust (fileWidenings).

// bindValue is a bind item's Value.
func bindValue(source, target, mode string) string {
	return fmt.Sprintf("%s -> %s (%s)", source, target, mode)
}

// bindTables reads the key's array of tables; nil after an error.
func (l *loader) bindTables(f *file, info *KeyInfo, v any, bad func([]string, string, string, string)) []item {
	key := strings.Split(info.Key, ".")
	var tables []map[string]any
	switch x := v.(type) {
	case []map[string]any:
		tables = x
	case []any:
		for _, e := range x {
			t, ok := e.(map[string]any)
			if !ok {
				bad(key, "", "expected tables of source, target and mode, but the array holds "+tomlType(e), info.Example)
				return nil
			}
			tables = append(tables, t)
		}
	default:
		bad(key, "", "expected [[filesystem.bind]] tables of source, target and mode, not "+tomlType(v), info.Example)
		return nil
	}
	items := []item{}
	for _, t := range tables {
		str := func(name string) (string, bool) {
			s, ok := t[name].(string)
			if _, present := t[name]; present && !ok {
				bad(key, "", fmt.Sprintf("%s: expected a string, not %s", name, tomlType(t[name])), info.Example)
				return "", false
			}
			return s, true
		}
		for name := range t {
			if name != "source" && name != "target" && name != "mode" {
				bad(key, "", fmt.Sprintf("unknown key %q in a [[filesystem.bind]] table (source, target, mode)", name), info.Example)
				return nil
			}
		}
		src, ok1 := str("source")
		target, ok2 := str("target")
		mode, ok3 := str("mode")
		if !ok1 || !ok2 || !ok3 {
			return nil
		}
		if src == "" || target == "" {
			bad(key, "", "a [[filesystem.bind]] needs a source and a target", info.Example)
			return nil
		}
		if mode == "" {
			mode = sandbox.BindRO
		}
		abs, refs, err := f.x.path(src)
		it := item{Raw: src, Abs: abs, Target: filepath.Clean(target), Mode: mode, refs: refs, Src: f.source(key, src)}
		if err != nil {
			l.errs.add(it.Src.errorAt(info.Key, err.Error(), errTip(err)))
			continue
		}
		if !filepath.IsAbs(target) {
			l.errs.add(it.Src.errorAt(info.Key, fmt.Sprintf("target %q must be an absolute path inside the sandbox", target), info.Example))
			continue
		}
		it.Value = bindValue(tilde(abs, f.x.home), it.Target, mode)
		items = append(items, it)
	}
	return items
}

// flagBind reads --bind SOURCE:TARGET[:ro|rw].
func flagBind(v string, path func(string) (string, error)) (item, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return item{}, fmt.Errorf("%q is not SOURCE:TARGET[:ro|rw]", v)
	}
	mode := sandbox.BindRO
	if len(parts) == 3 {
		mode = parts[2]
	}
	if mode != sandbox.BindRO && mode != sandbox.BindRW {
		return item{}, fmt.Errorf("%q: mode %q is not ro or rw", v, mode)
	}
	abs, err := path(parts[0])
	if err != nil {
		return item{}, err
	}
	if !filepath.IsAbs(parts[1]) {
		return item{}, fmt.Errorf("%q: target %q must be an absolute path inside the sandbox", v, parts[1])
	}
	return item{Raw: v, Abs: abs, Target: filepath.Clean(parts[1]), Mode: mode}, nil
}
