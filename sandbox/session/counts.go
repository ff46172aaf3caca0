package session

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// LayerChanges is one layer's changes, for the summary of a run and for
// hutch sessions: every layer counts, not only the project's. A change to
// ~/.bashrc in a home layer is the one a user most needs to see.
type LayerChanges struct {
	Layer   string          `json:"layer"`
	Root    string          `json:"root"` // the host directory it overlays
	Counts  layers.Counts   `json:"counts"`
	Changes []layers.Change `json:"-"`
}

// layerOrder puts the project first, then home, then the rest by name.
func layerOrder(names []string) []string {
	rank := func(n string) int {
		switch n {
		case LayerProject:
			return 0
		case LayerHome:
			return 1
		}
		return 2
	}
	out := append([]string(nil), names...)
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := rank(out[i]), rank(out[j]); a != b {
			return a < b
		}
		return out[i] < out[j]
	})
	return out
}

// AllChanges lists the changes of every layer that has any, project first.
func (s *Session) AllChanges() ([]LayerChanges, error) {
	var out []LayerChanges
	for _, name := range layerOrder(s.Layers()) {
		cs, err := s.Changes(name, nil)
		if err != nil {
			return nil, fmt.Errorf("%s layer: %w", name, err)
		}
		if len(cs) == 0 {
			continue
		}
		out = append(out, LayerChanges{Layer: name, Root: s.LayerRoot(name), Counts: layers.Count(cs), Changes: cs})
	}
	return out, nil
}

// sumCounts adds up the layers' counts.
func sumCounts(ls []LayerChanges) layers.Counts {
	var t layers.Counts
	for _, l := range ls {
		t.Added += l.Counts.Added
		t.Modified += l.Counts.Modified
		t.Deleted += l.Counts.Deleted
		t.TypeChanged += l.Counts.TypeChanged
		t.ModeChanged += l.Counts.ModeChanged
	}
	return t
}

// layerWhere names where a layer's changes are for a summary line: "./"
// for the project beneath the working directory, "~/ (home)", "/usr/",
// "/ (image)".
func layerWhere(l LayerChanges) string {
	switch {
	case l.Layer == LayerHome:
		return displayDir(l.Root) + " (home)"
	case l.Root == "/":
		return "/ (image)"
	}
	return displayDir(l.Root)
}

// SummarizeLayers is "1 added in ./; 1 modified in ~/ (home)".
func SummarizeLayers(ls []LayerChanges, note func(LayerChanges) string) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s in %s%s", l.Counts, layerWhere(l), note(l)))
	}
	return strings.Join(parts, "; ")
}
