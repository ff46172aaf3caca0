package layers

import (
	"fmt"
	"path"
	"strings"
)

// CheckGlob refuses a malformed --exclude pattern.
func CheckGlob(g string) error {
	if g == "" || strings.HasPrefix(g, "/") {
		return fmt.Errorf("bad --exclude pattern %q: give a glob relative to the layer's root, such as node_modules or '*.log'", g)
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("bad --exclude pattern %q: %v", g, err)
	}
	return nil
}

// Excluded reports whether p matches one of globs as git's ignore rules
// do: a pattern without a slash matches any path element ("*.log",
// "node_modules"), one with a slash the path from the root ("build/*.o");
// either way everything beneath a match is excluded too.
func Excluded(p string, globs []string) bool {
	for _, g := range globs {
		g = strings.TrimSuffix(g, "/")
		parts := strings.Split(p, "/")
		for i := range parts {
			var subject string
			if strings.Contains(g, "/") {
				subject = strings.Join(parts[:i+1], "/")
			} else {
				subject = parts[i]
			}
			if ok, _ := path.Match(g, subject); ok {
				return true
			}
		}
	}
	return false
}

// Exclude drops the changes matching globs. A directory deleted (or
// turned into something else) goes with everything in it, so one that
// holds an excluded path is dropped as well: excluding a path never
// removes it.
func Exclude(changes []Change, globs []string) []Change {
	if len(globs) == 0 {
		return changes
	}
	var out []Change
	var gone []string
	for _, c := range changes {
		if Excluded(c.Path, globs) {
			gone = append(gone, c.Path)
			continue
		}
		out = append(out, c)
	}
	if len(gone) == 0 {
		return out
	}
	keep := out[:0]
	for _, c := range out {
		whole := c.Old != nil && c.Old.Type == TypeDir && (c.Kind == Deleted || c.Kind == TypeChanged)
		if whole && holdsAny(c.Path, gone) {
			continue
		}
		keep = append(keep, c)
	}
	return keep
}

func holdsAny(dir string, paths []string) bool {
	for _, p := range paths {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}
