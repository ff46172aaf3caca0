package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// Session is a kept session, for hutch diff, apply, discard and sessions.
type Session struct {
	Name string
	dir  string
	meta *Meta
	lock *os.File
}

// ForRun is the session a run is using, for its summary and its clean-up:
// name is "" for a run that keeps nothing.
func ForRun(name, dir string, m *Meta) *Session {
	return &Session{Name: name, dir: dir, meta: m}
}

// SessionInfo describes a session for hutch sessions.
type SessionInfo struct {
	Name    string         `json:"name"`
	Project string         `json:"project,omitempty"`
	Driver  string         `json:"driver"`
	Created time.Time      `json:"created"`
	Updated time.Time      `json:"updated"`
	Runs    int            `json:"runs"`
	Layers  []string       `json:"layers"`
	Size    int64          `json:"size"` // bytes in the upper layers
	Changes *layers.Counts `json:"changes,omitempty"`
	// LayerChanges counts each layer that has changes, project first.
	LayerChanges []LayerChanges `json:"layer_changes,omitempty"`
	// InUse is the pid of the hutch using it.
	InUse int `json:"in_use,omitempty"`
	// Interrupted: its last run was killed before it ended.
	Interrupted bool `json:"interrupted,omitempty"`
	// Stopped says why hutch stopped its last run (a helper died).
	Stopped string `json:"stopped,omitempty"`
	Error   string `json:"error,omitempty"`
	dir     string
}

// ErrNoSession is returned for a session that does not exist.
var ErrNoSession = errors.New("no such session")

func userSessionsDir() (string, error) {
	home := os.Getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", err
		}
	}
	return Dir(DataDir(home)), nil
}

// OpenSession opens the kept session name.
func OpenSession(name string) (*Session, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%q is not a valid session name", name)
	}
	dir, err := userSessionsDir()
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(cwd); err == nil {
		cwd = r
	}
	s := &Session{Name: name}
	if s.dir, s.meta, err = findSession(dir, name, cwd); err != nil {
		return nil, err
	}
	return s, nil
}

// Lock takes the session for a change (apply, discard).
func (s *Session) Lock() error {
	f, err := LockSession(s.dir, s.Name)
	if err != nil {
		return err
	}
	s.lock = f
	// Re-read: a run may have ended meanwhile.
	if m, err := ReadMeta(s.dir); err == nil {
		s.meta = m
	}
	return nil
}

// Close drops the lock.
func (s *Session) Close() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// Project is the project directory the session overlays ("" if none).
func (s *Session) Project() string { return s.meta.Project }

// Layers lists the session's layers.
func (s *Session) Layers() []string {
	var out []string
	for n := range s.meta.Layers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Sessions lists the kept sessions.
// SessionLowers lists the lower directories that kept sessions overlay
// with several lowers (images' layers): pruning them would leave a
// session without the tree its upper layer was made on.
func SessionLowers() []string {
	dir, err := userSessionsDir()
	if err != nil {
		return nil
	}
	dirs, _ := sessionDirs(dir)
	var out []string
	for _, d := range dirs {
		m, err := ReadMeta(d)
		if err != nil {
			continue
		}
		for _, ls := range m.Lowers {
			out = append(out, ls...)
		}
	}
	return out
}

func Sessions() ([]SessionInfo, error) {
	dir, err := userSessionsDir()
	if err != nil {
		return nil, err
	}
	dirs, err := sessionDirs(dir)
	if err != nil {
		return nil, err
	}
	var out []SessionInfo
	for _, d := range dirs {
		s := &Session{Name: filepath.Base(d), dir: d}
		info := SessionInfo{Name: s.Name, dir: d}
		if s.meta, err = ReadMeta(s.dir); err != nil {
			info.Error = err.Error()
			out = append(out, info)
			continue
		}
		m := s.meta
		info.Project, info.Driver, info.Created, info.Updated, info.Runs = m.Project, m.Driver, m.Created, m.Updated, m.Runs
		info.Layers = s.Layers()
		info.InUse = lockHolder(s.dir)
		info.Interrupted = LastRunning(s.dir, m) != nil && info.InUse == 0
		info.Stopped = m.Stopped
		info.Size = dirSize(filepath.Join(s.dir, "layers"))
		if info.InUse == 0 {
			// Every layer counts: a home layer's ~/.bashrc above all.
			if ls, err := s.AllChanges(); err != nil {
				info.Error = err.Error()
			} else {
				c := sumCounts(ls)
				info.Changes, info.LayerChanges = &c, ls
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// dirSize sums the sizes of what it can read beneath dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Changes lists a layer's changes at or beneath paths.
func (s *Session) Changes(layer string, paths []string) ([]layers.Change, error) {
	rep, err := s.op(opRequest{Op: "diff", Layer: layer, Paths: paths}, io.Discard, nil)
	if err != nil {
		return nil, err
	}
	return rep.Changes, nil
}

// WriteDiff writes a layer's changes at or beneath paths: "unified" (git
// diff's format) or "stat" (one line per path with line counts); the
// changes are returned either way.
func (s *Session) WriteDiff(w io.Writer, layer string, paths []string, format string) ([]layers.Change, error) {
	rep, err := s.op(opRequest{Op: "diff", Layer: layer, Paths: paths, Output: format}, w, nil)
	if err != nil {
		return nil, err
	}
	return rep.Changes, nil
}

// ApplyOptions tune Session.Apply.
type ApplyOptions struct {
	Paths []string // at or beneath these (relative to the project); all when empty
	Force bool     // over conflicts
	// RunLater applies changes that run later on the host (git config and
	// hooks, hutch.toml, .envrc, editor settings) without naming them.
	RunLater bool
	Progress func(layers.Result)
	// Exclude leaves the changes matching these globs in the session.
	Exclude []string
	// Merge merges a conflicting text file with the host's edit.
	Merge bool
}

// Apply makes the session's project changes on the host; those applied
// leave the session. Call Lock first.
func (s *Session) Apply(opts ApplyOptions) (*layers.Report, error) {
	if s.meta.Project == "" {
		return nil, fmt.Errorf("session %s does not overlay a project: there is nothing to apply", s.Name)
	}
	rep, err := s.op(opRequest{Op: "apply", Layer: LayerProject, Paths: opts.Paths, Force: opts.Force, RunLater: opts.RunLater,
		Exclude: opts.Exclude, Merge: opts.Merge}, io.Discard, opts.Progress)
	if err != nil {
		return nil, err
	}
	return rep.Report, nil
}

// Discard removes the session. Call Lock first.
func (s *Session) Discard() error {
	return s.removeAll()
}

// removeAll removes the session directory, inside a user namespace with
// the session's id maps when plain removal fails on files the sandbox made
// for other ids.
func (s *Session) removeAll() error {
	if removeTree(s.dir) == nil {
		return nil
	}
	if s.meta == nil || !s.meta.MapHelpers {
		return removeTree(s.dir)
	}
	_, err := s.viaHelper(opRequest{Op: "remove"}, io.Discard, nil)
	if err != nil {
		return err
	}
	return removeTree(s.dir)
}

// removeTree removes dir, opening up directories the kernel's overlay
// leaves mode 0 (its work directories).
func removeTree(dir string) error {
	// The kernel's overlay leaves layers/*/work/work mode 0.
	if ws, _ := filepath.Glob(filepath.Join(dir, "layers", "*", "work", "*")); len(ws) > 0 {
		for _, w := range ws {
			os.Chmod(w, 0o700)
		}
	}
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
