package pid1

import (
	"io/fs"
	"path/filepath"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"golang.org/x/sys/unix"
)

// homeWalkBound bounds the walk after the command ends: teardown stays
// short whatever the command left.
const homeWalkBound = 5000

// tmpHome is the command's home when it is a temporary one.
func tmpHome(plan *model.Plan) string {
	home := envValue(plan.Env, "HOME")
	for _, m := range plan.Mounts {
		if m.Kind == model.MountTmpfs && m.Dst == home && home != "" {
			return home
		}
	}
	return ""
}

// homeWrites walks a temporary home once the command has ended, inside
// its mount namespace. Binds inside it (the project, caches, dotfiles) are
// other file systems and are skipped: only what would be lost counts.
func homeWrites(plan *model.Plan) *model.HomeWrites {
	home := tmpHome(plan)
	if home == "" {
		return nil
	}
	var root unix.Stat_t
	if unix.Lstat(home, &root) != nil {
		return nil
	}
	w := &model.HomeWrites{}
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
