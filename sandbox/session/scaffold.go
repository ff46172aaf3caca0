package session

import (
	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// Scaffolding: to mount /proc, /dev, a generated /etc/hosts and the like
// over an overlaid root (an image's /), hutch makes their mount points in
// the merged view, and so in the upper layer. Those are hutch's, not the
// command's: a run's summary, hutch sessions and hutch diff leave them
// out. A session records, per layer, the mount points beneath it (and
// the directories above them) of every run it had.

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
