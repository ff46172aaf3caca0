package session

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/paths"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// opRequest is one operation on a session's layers, run here or in the
// helper (helper.go).
type opRequest struct {
	Op     string   `json:"op"` // "diff", "apply", "remove"
	Dir    string   `json:"dir"`
	Layer  string   `json:"layer,omitempty"`
	Lower  string   `json:"lower,omitempty"`
	Lowers []string `json:"lowers,omitempty"`
	Driver string   `json:"driver,omitempty"`
	Paths  []string `json:"paths,omitempty"`
	Force  bool     `json:"force,omitempty"`
	// RunLater: apply held changes (ApplyOptions.RunLater).
	RunLater bool `json:"run_later,omitempty"`
	// Output of a diff: "" (none), "unified" or "stat".
	Output string `json:"output,omitempty"`
	// Exclude drops the changes matching these globs (layers.Exclude).
	Exclude []string `json:"exclude,omitempty"`
	// Merge: apply merges conflicting text files (ApplyOptions.Merge).
	Merge bool `json:"merge,omitempty"`
	// Scaffold: mount points hutch made in the layer (dropScaffold).
	Scaffold []string `json:"scaffold,omitempty"`
}

type opReply struct {
	Changes []layers.Change `json:"changes,omitempty"`
	Report  *layers.Report  `json:"report,omitempty"`
	Err     string          `json:"err,omitempty"`
	Hint    string          `json:"hint,omitempty"`
}

// op runs req on s, in a user namespace with the session's maps when its
// upper layers hold files that are not all yours.
func (s *Session) op(req opRequest, w io.Writer, progress func(layers.Result)) (*opReply, error) {
	if _, ok := s.meta.Layers[req.Layer]; !ok && req.Op != "remove" {
		return nil, fmt.Errorf("session %s has no %s layer (it has: %s)", s.Name, req.Layer, strings.Join(s.Layers(), ", "))
	}
	req.Dir, req.Lower, req.Driver = s.dir, s.meta.Layers[req.Layer], s.meta.Driver
	req.Lowers = s.meta.Lowers[req.Layer]
	req.Scaffold = s.meta.Scaffold[req.Layer]
	if s.meta.MapHelpers && foreign(filepath.Join(s.dir, "layers", req.Layer, "upper")) {
		return s.viaHelper(req, w, progress)
	}
	return doOp(req, w, progress)
}

// foreign reports whether anything beneath dir is not the caller's, or
// cannot be read.
func foreign(dir string) bool {
	uid := uint32(os.Getuid())
	found := false
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			found = true
			return filepath.SkipAll
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Uid != uid {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// doOp runs req in this process.
func doOp(req opRequest, w io.Writer, progress func(layers.Result)) (*opReply, error) {
	if req.Op == "remove" {
		return &opReply{}, removeTree(req.Dir)
	}
	f, err := layers.ParseFormat(req.Driver)
	if err != nil {
		return nil, err
	}
	l := &layers.Layer{Lower: req.Lower, Lowers: req.Lowers, Upper: filepath.Join(req.Dir, "layers", req.Layer, "upper"), Format: f}
	cs, err := l.Diff()
	if err != nil {
		return nil, err
	}
	cs = layers.Exclude(layers.Select(dropScaffold(cs, req.Scaffold), req.Paths), req.Exclude)
	if req.Layer == LayerProject {
		layers.MarkRunsLater(cs)
	}
	switch req.Op {
	case "diff":
		switch req.Output {
		case "unified":
			err = l.WriteUnified(w, cs)
		case "stat":
			err = l.Stat(cs)
		}
		return &opReply{Changes: cs}, err
	case "apply":
		var base *layers.Baseline
		bfile := filepath.Join(req.Dir, "baseline")
		if base, err = layers.LoadBaseline(bfile); err != nil {
			if !req.Force {
				return nil, hint.With(fmt.Errorf("%w (%v)", layers.ErrNoBaseline, err),
					"check the changes with hutch diff, then apply with --force")
			}
			base = nil
		}
		store := BaseStore(req.Dir)
		aopts := layers.ApplyOptions{Force: req.Force, Baseline: base, SymlinkOK: systemTarget,
			RunLater: layers.RunLaterAllowed(req.RunLater, req.Paths), Progress: progress}
		if req.Merge && base != nil {
			aopts.MergeBase = store.Get
		}
		rep, err := l.Apply(req.Lower, cs, aopts)
		if err != nil {
			return nil, err
		}
		// Applied changes leave the session; what is left stays for later.
		// A merged file's copy goes too: the host holds the merge.
		var applied, merged []string
		for _, r := range rep.Results {
			if (r.Outcome == layers.Applied || r.Outcome == layers.Merged) && r.Under == "" {
				applied = append(applied, r.Path)
				store.Drop(r.Path)
			}
			if r.Outcome == layers.Merged {
				merged = append(merged, r.Path)
			}
		}
		if err := l.DropUpper(merged); err != nil {
			return &opReply{Report: rep}, fmt.Errorf("removing merged files from the session: %w", err)
		}
		if len(applied) > 0 {
			if err := l.Prune(applied); err != nil {
				return &opReply{Report: rep}, fmt.Errorf("removing applied changes from the session: %w", err)
			}
			if base != nil {
				if err := base.Save(bfile); err != nil {
					return &opReply{Report: rep}, err
				}
			}
		}
		return &opReply{Report: rep}, nil
	}
	return nil, fmt.Errorf("unknown operation %q", req.Op)
}

// systemTarget allows an applied symlink to point into the host's system
// directories, which you cannot write through (a venv's bin/python →
// /usr/bin/python3). Anything else outside the project, your home above
// all, is refused: a link planted there would make your own tools write
// where the sandbox could not.
func systemTarget(abs string) bool {
	for _, d := range paths.SystemDirs {
		if paths.Within("/"+d, abs) {
			return true
		}
	}
	return false
}

// LayerRoot is the host directory a layer overlays ("" if none).
// An image's layer covers the whole root.
func (s *Session) LayerRoot(layer string) string {
	if len(s.meta.Lowers[layer]) > 0 {
		return "/"
	}
	return s.meta.Layers[layer]
}
