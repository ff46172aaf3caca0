package session

import (
	"fmt"
	"io"
	"time"
)

// DiffOptions select what Session.Diff shows.
type DiffOptions struct {
	Layer   string
	Paths   []string // at or beneath these (relative to the layer's root)
	Exclude []string // globs (layers.Exclude)
	// Format of what is written: "unified" (git diff's), "stat" (line
	// counts only, nothing written), or "" (nothing).
	Format string
}

// Diff lists a layer's changes and writes them in o.Format.
func (s *Session) Diff(w io.Writer, o DiffOptions) (LayerChanges, error) {
	rep, err := s.op(opRequest{Op: "diff", Layer: o.Layer, Paths: o.Paths, Exclude: o.Exclude, Output: o.Format}, w, nil)
	if err != nil {
		return LayerChanges{}, err
	}
	return LayerChanges{Layer: o.Layer, Root: s.LayerRoot(o.Layer), Changes: rep.Changes}, nil
}

// DiscardIfDone removes the session when no layer of it holds a change
// any more (all applied): it reports whether it did. Call Lock first.
func (s *Session) DiscardIfDone() (bool, error) {
	ls, err := s.AllChanges()
	if err != nil || len(ls) > 0 {
		return false, err
	}
	return true, s.removeAll()
}

// PruneOptions select the sessions PruneSessions removes.
type PruneOptions struct {
	// OlderThan, when set, also removes sessions not used for this long,
	// changes and all.
	OlderThan time.Duration
	// DryRun says what would go without removing it.
	DryRun bool
	// Progress sees each session pruned, and why.
	Progress func(s SessionInfo, why string)
}

// PruneSessions removes the kept sessions that hold no changes, and with
// OlderThan those not used for that long. A session in use is left.
func PruneSessions(o PruneOptions) (int, error) {
	list, err := Sessions()
	if err != nil {
		return 0, err
	}
	dir, err := userSessionsDir()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, info := range list {
		var why string
		last := info.Updated
		if last.IsZero() {
			last = info.Created
		}
		switch {
		case info.InUse != 0 || info.Error != "":
			continue
		case info.Changes != nil && info.Changes.Total() == 0:
			why = "no changes"
		case o.OlderThan > 0 && !last.IsZero() && time.Since(last) > o.OlderThan:
			why = fmt.Sprintf("not used since %s", last.Format("2006-01-02 15:04"))
		default:
			continue
		}
		if !o.DryRun {
			s := &Session{Name: info.Name, dir: info.dir}
			if s.meta, err = ReadMeta(s.dir); err != nil {
				return n, err
			}
			if err := s.Lock(); err != nil {
				continue // taken meanwhile: it is in use
			}
			// A run may have used it between the listing and the lock.
			if !s.meta.Updated.Equal(info.Updated) || s.meta.Running != nil && !info.Interrupted {
				s.Close()
				continue
			}
			err = s.removeAll()
			s.Close()
			if err != nil {
				return n, fmt.Errorf("pruning session %s: %w", info.Name, err)
			}
		}
		n++
		if o.Progress != nil {
			o.Progress(info, why)
		}
	}
	CollectStaleRuns(dir)
	return n, nil
}
