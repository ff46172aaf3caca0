package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/bytesjson"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/paths"
	"github.com/hutch-sandbox/hutch/userns"
)

// Meta is session.json.
type Meta struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Project string    `json:"project,omitempty"` // the overlaid project directory
	Driver  string    `json:"driver"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Runs    int       `json:"runs"`
	// Layers maps each layer's name to the host directory it overlays.
	Layers map[string]string `json:"layers"`
	// Lowers lists a layer's lower directories, top first, when it has
	// several (an image's layers).
	Lowers map[string][]string `json:"lowers,omitempty"`
	// Scaffold lists, per layer, the mount points hutch made in it
	// (scaffold.go).
	Scaffold map[string][]string `json:"scaffold,omitempty"`
	// The id maps of the runs: files in the upper layers may belong to any
	// id in them, and hutch reads and removes them inside a user namespace
	// with the same maps when they do not all belong to you.
	UIDMap     []userns.Mapping `json:"uid_map"`
	GIDMap     []userns.Mapping `json:"gid_map"`
	MapHelpers bool             `json:"map_helpers,omitempty"`
	// Running is how sessions made before the "running" file marked a
	// run in progress; read, never written.
	Running *RunMark `json:"running,omitempty"`
	// Stopped says why the last run was stopped by hutch (a helper such
	// as fuse-overlayfs died); empty when it ended on its own.
	Stopped string `json:"stopped,omitempty"`
}

// A run in progress is marked by an empty file, running.PID.STARTED (unix
// nanoseconds), made as the run starts and removed as it ends; a run
// killed with -9 leaves it behind, which the next user reports. It is a
// file of its own, not a field of session.json, and empty, because
// removing it works on a full disk, where rewriting session.json does not:
// a run that ended must never look killed.
func RunningFile(m RunMark) string {
	return fmt.Sprintf("running.%d.%d", m.PID, m.Started.UnixNano())
}

// LastRunning is the mark a run left that did not end, or nil.
func LastRunning(dir string, m *Meta) *RunMark {
	marks, _ := filepath.Glob(filepath.Join(dir, "running.*"))
	for _, p := range marks {
		var pid int
		var started int64
		if _, err := fmt.Sscanf(filepath.Base(p), "running.%d.%d", &pid, &started); err == nil {
			return &RunMark{PID: pid, Started: time.Unix(0, started)}
		}
	}
	if m != nil {
		return m.Running
	}
	return nil
}

type RunMark struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

const MetaFile = "session.json"

func ReadMeta(dir string) (*Meta, error) {
	data, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := bytesjson.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, MetaFile), err)
	}
	return &m, nil
}

func WriteMeta(dir string, m *Meta) error {
	data, err := bytesjson.Marshal(m)
	if err != nil {
		return err
	}
	var ind bytes.Buffer
	json.Indent(&ind, data, "", "  ")
	return writeFileAtomic(filepath.Join(dir, MetaFile), append(ind.Bytes(), '\n'))
}

// writeFileAtomic replaces path with data through a temporary file, so a
// full disk leaves the old contents, never a truncated file.
func writeFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// SessionInUseError is returned when another hutch holds a session.
type SessionInUseError struct {
	Name string
	PID  int
}

func (e *SessionInUseError) Error() string {
	return fmt.Sprintf("session %s is in use by pid %d", e.Name, e.PID)
}

// LockSession takes dir's lock, or says who holds it.
func LockSession(dir, name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid := flockHolder(f)
		f.Close()
		return nil, hint.With(&SessionInUseError{Name: name, PID: pid},
			"one run at a time per session: wait for it, or use another name")
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// LockNewRun locks a fresh run directory (one that keeps nothing). The
// lock file appears under its name already locked and holding our pid: a
// lock file that showed up empty and unlocked, even for an instant, could
// be taken by another run's CollectStaleRuns, which would then remove
// this run's layers, or make it fail as "in use by pid 0".
func LockNewRun(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".lock-")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	if err := os.Rename(f.Name(), filepath.Join(dir, "lock")); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// flockHolder is the pid holding a flock on f's file, from /proc/locks:
// the kernel's record cannot be read half-written, as the pid in the file
// can while its holder is still writing it. The file's contents are the
// fallback (no /proc).
func flockHolder(f *os.File) int {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil {
		id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
		if data, err := os.ReadFile("/proc/locks"); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				// "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
				fs := strings.Fields(line)
				if len(fs) >= 6 && fs[1] == "FLOCK" && fs[5] == id {
					if pid, err := strconv.Atoi(fs[4]); err == nil && pid > 0 {
						return pid
					}
				}
			}
		}
	}
	data, _ := os.ReadFile(f.Name())
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// lockHolder returns the pid holding dir's lock, or 0.
func lockHolder(dir string) int {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) == nil {
		return 0
	}
	pid := flockHolder(f)
	if pid == 0 {
		pid = -1
	}
	return pid
}

// EnsureDir creates the sessions directory 0700 and refuses one
// that others could write: its upper layers become the sandbox's files.
func EnsureDir(dir string) error {
	// $XDG_DATA_HOME (~/.local/share) as usual; hutch's own part 0700.
	os.MkdirAll(filepath.Dir(filepath.Dir(dir)), 0o755)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return hint.With(fmt.Errorf("creating the sessions directory %s: %w", dir, err),
			"set XDG_DATA_HOME to a directory you own")
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o022 != 0 {
		return fmt.Errorf("sessions directory %s is not a directory owned by you and closed to others", dir)
	}
	return nil
}

// displayDir shows dir relative to the working directory when beneath it
// ("./", "sub/"), else with ~ for home.
func displayDir(dir string) string {
	if cwd, err := os.Getwd(); err == nil {
		if r, err := filepath.EvalSymlinks(cwd); err == nil {
			cwd = r
		}
		if rel, err := filepath.Rel(cwd, dir); err == nil && !strings.HasPrefix(rel, "..") {
			if rel == "." {
				return "./"
			}
			return rel + "/"
		}
	}
	if home, err := os.UserHomeDir(); err == nil && paths.Within(home, dir) {
		return "~" + strings.TrimPrefix(dir, home) + "/"
	}
	return dir + "/"
}

// CollectStaleRuns removes the layers of runs that were killed.
func CollectStaleRuns(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ".run-") {
			continue
		}
		d := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(filepath.Join(d, "lock"), os.O_RDWR, 0)
		if err != nil {
			// Killed before it locked: give one being made now a minute.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				removeTree(d)
			}
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			meta, _ := ReadMeta(d)
			s := &Session{dir: d, meta: meta}
			s.removeAll()
		}
		f.Close()
	}
}
