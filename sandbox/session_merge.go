package sandbox

import (
	"fmt"
	"path/filepath"

	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// baseFilesDir is where a session keeps the content of the project files
// it modified, as they were when it began: what apply --merge merges from.
const baseFilesDir = "baseline-files"

func baseStore(dir string) layers.BaseStore {
	return layers.BaseStore{Dir: filepath.Join(dir, baseFilesDir)}
}

// keepBase records, when a kept run ends, the host's content of each
// project file the session modified and the host has not changed since
// the session began. It is done once per file: later runs find it kept.
func (r *runLayers) keepBase(ls []LayerChanges) {
	if r.name == "" || r.lp.Project == "" {
		return
	}
	for _, l := range ls {
		if l.Layer != LayerProject {
			continue
		}
		b, err := layers.LoadBaseline(filepath.Join(r.dir, "baseline"))
		if err == nil {
			err = baseStore(r.dir).Keep(r.lp.Project, l.Changes, b)
		}
		if err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("session %s: keeping the modified files' content for apply --merge: %v", r.name, err))
		}
	}
}
