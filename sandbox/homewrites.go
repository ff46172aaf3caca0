package sandbox

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// HomeWrites is what the command left in a temporary home (home =
// "tmpfs"), which goes with the sandbox: go install's binaries, npm -g's
// packages, the logs whose paths a tool printed. The CLI says so at exit.
type HomeWrites struct {
	// Count is the files (and symlinks) written there; Paths the first
	// few, relative to home. More: the walk stopped at its bound.
	Count int      `json:"count"`
	Paths []string `json:"paths,omitempty"`
	More  bool     `json:"more,omitempty"`
}

// homeWalkBound bounds the walk after the command ends: teardown stays
// short whatever the command left.
const homeWalkBound = 5000

// tmpHome is the command's home when it is a temporary one.
func tmpHome(plan *Plan) string {
	home := envValue(plan.Env, "HOME")
	for _, m := range plan.Mounts {
		if m.Kind == MountTmpfs && m.Dst == home && home != "" {
			return home
		}
	}
	return ""
}

// homeWrites walks a temporary home once the command has ended, inside
// its mount namespace. Binds inside it (the project, caches, dotfiles) are
// other file systems and are skipped: only what would be lost counts.
func homeWrites(plan *Plan) *HomeWrites {
	home := tmpHome(plan)
	if home == "" {
		return nil
	}
	var root unix.Stat_t
	if unix.Lstat(home, &root) != nil {
		return nil
	}
	w := &HomeWrites{}
	seen := 0
	filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == home {
			return nil
		}
		if seen++; seen > homeWalkBound {
			w.More = true
			return filepath.SkipAll
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Dev != root.Dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		w.Count++
		if len(w.Paths) < 3 {
			rel, _ := filepath.Rel(home, p)
			w.Paths = append(w.Paths, rel)
		}
		return nil
	})
	if w.Count == 0 {
		return nil
	}
	return w
}
