package session

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/paths"
)

// Session names are scoped per project, so that `--keep wip` works in
// each project. A session of the project P lives in
//
//	$XDG_DATA_HOME/hutch/sessions/@BASE-HASH/NAME
//
// where BASE is P's last element (for people reading the directory) and
// HASH the first 8 bytes of P's SHA-256. "@" is never in a session name,
// so a scope cannot be mistaken for a session. Sessions made before the
// scoping, and sessions that overlay no project (only a home), live in
// sessions/NAME as before: every lookup looks both ways, and a run keeps
// using an older session of its own project where it is.

// scopePrefix starts the name of a project's directory of sessions.
const scopePrefix = "@"

// projectScope is the name of the directory of project's sessions; ""
// for sessions that overlay no project.
func projectScope(project string) string {
	if project == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(project))
	base := []rune{}
	for _, r := range filepath.Base(project) {
		if len(base) == 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			base = append(base, r)
		} else {
			base = append(base, '_')
		}
	}
	return scopePrefix + string(base) + "-" + hex.EncodeToString(sum[:8])
}

// RunDir is where the run of project keeps the session name: an
// older unscoped session of the same project where it is, else in the
// project's scope (made here, 0700).
func RunDir(dir, project, name string) (string, error) {
	scope := projectScope(project)
	if scope == "" {
		return filepath.Join(dir, name), nil
	}
	if m, err := ReadMeta(filepath.Join(dir, name)); err == nil && m.Project == project {
		return filepath.Join(dir, name), nil
	}
	if err := os.Mkdir(filepath.Join(dir, scope), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return filepath.Join(dir, scope, name), nil
}

// sessionDirs lists the directories of every kept session beneath dir,
// scoped or not, sorted by name and then path.
func sessionDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !strings.HasPrefix(e.Name(), scopePrefix) {
			out = append(out, filepath.Join(dir, e.Name()))
			continue
		}
		sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, s := range sub {
			if s.IsDir() && !strings.HasPrefix(s.Name(), ".") {
				out = append(out, filepath.Join(dir, e.Name(), s.Name()))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := filepath.Base(out[i]), filepath.Base(out[j]); a != b {
			return a < b
		}
		return out[i] < out[j]
	})
	return out, nil
}

// AmbiguousSessionError is returned for a session name that several
// projects use, asked for from none of them.
type AmbiguousSessionError struct {
	Name     string
	Projects []string
}

func (e *AmbiguousSessionError) Error() string {
	return fmt.Sprintf("session %s exists in %d projects: %s", e.Name, len(e.Projects), strings.Join(e.Projects, ", "))
}

// Hint says how to pick one.
func (e *AmbiguousSessionError) Hint() string {
	return "run the command from inside the project whose session you mean"
}

// findSession resolves name: the session of the project the working
// directory is in (the innermost, if projects nest), else the only
// session of that name.
func findSession(dir, name, cwd string) (string, *Meta, error) {
	dirs, err := sessionDirs(dir)
	if err != nil {
		return "", nil, err
	}
	type cand struct {
		dir  string
		meta *Meta
	}
	var cands []cand
	var firstErr error
	for _, d := range dirs {
		if filepath.Base(d) != name {
			continue
		}
		m, err := ReadMeta(d)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) && firstErr == nil {
				firstErr = err
			}
			continue
		}
		cands = append(cands, cand{d, m})
	}
	if len(cands) == 0 {
		if firstErr != nil {
			return "", nil, firstErr
		}
		return "", nil, hint.With(fmt.Errorf("session %s: %w", name, ErrNoSession), "hutch sessions lists them")
	}
	best := -1
	for i, c := range cands {
		if c.meta.Project != "" && paths.Within(c.meta.Project, cwd) && (best < 0 || len(c.meta.Project) > len(cands[best].meta.Project)) {
			best = i
		}
	}
	if best < 0 && len(cands) == 1 {
		best = 0
	}
	if best < 0 {
		e := &AmbiguousSessionError{Name: name}
		for _, c := range cands {
			p := c.meta.Project
			if p == "" {
				p = "(no project)"
			}
			e.Projects = append(e.Projects, p)
		}
		return "", nil, e
	}
	return cands[best].dir, cands[best].meta, nil
}
