package session

import (
	"path/filepath"

	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// baseFilesDir is where a session keeps the content of the project files
// it modified, as they were when it began: what apply --merge merges from.
const baseFilesDir = "baseline-files"

func BaseStore(dir string) layers.BaseStore {
	return layers.BaseStore{Dir: filepath.Join(dir, baseFilesDir)}
}
