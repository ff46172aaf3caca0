package session

import (
	"os"
	"path/filepath"
)

// Layer names: "project", "home", and "root-DIR" for a system directory
// (the model, sandbox.LayersPlan, names them the same).
const (
	LayerProject = "project"
	LayerHome    = "home"
)

// Dir is where sessions live, in hutch's data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, "sessions") }

// DataDir is hutch's data directory: $XDG_DATA_HOME/hutch, or
// ~/.local/share/hutch.
func DataDir(home string) string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "hutch")
	}
	return filepath.Join(home, ".local", "share", "hutch")
}

// ValidName allows names that are safe as one path element and in
// overlay mount options.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
