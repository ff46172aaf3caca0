package sandbox

import (
	"path"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// Scaffolding: to mount /proc, /dev, a generated /etc/hosts and the like
// over an overlaid root (an image's /), hutch makes their mount points in
// the merged view, and so in the upper layer. Those are hutch's, not the
// command's: a run's summary, hutch sessions and hutch diff leave them
// out. A session records, per layer, the mount points beneath it (and
// the directories above them) of every run it had.

// recordScaffold adds the plan's mount points beneath the overlay m.
func (r *runLayers) recordScaffold(m Mount) {
	set := map[string]bool{}
	for _, p := range r.meta.Scaffold[m.Layer] {
		set[p] = true
	}
	for _, o := range r.plan.Mounts {
		if o.Dst == m.Dst || !isWithin(m.Dst, o.Dst) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(o.Dst, m.Dst), "/")
		for p := rel; p != "." && p != "" && p != "/"; p = path.Dir(p) {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	if m.Dst == "/" {
		set[".hutch"] = true // the staging directory (rootBuilder.stage)
	}
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	if r.meta.Scaffold == nil {
		r.meta.Scaffold = map[string][]string{}
	}
	r.meta.Scaffold[m.Layer] = out
}

// dropScaffold leaves out the mount points hutch made: added directories
// and empty files at the recorded paths. What the command put in them
// stays.
func dropScaffold(cs []layers.Change, scaffold []string) []layers.Change {
	if len(scaffold) == 0 {
		return cs
	}
	set := map[string]bool{}
	for _, p := range scaffold {
		set[p] = true
	}
	out := cs[:0:0]
	for _, c := range cs {
		if c.Kind == layers.Added && set[c.Path] && c.New != nil &&
			(c.New.Type == layers.TypeDir || c.New.Type == layers.TypeFile && c.New.Size == 0) {
			continue
		}
		out = append(out, c)
	}
	return out
}
