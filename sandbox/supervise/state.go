package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"golang.org/x/sys/unix"
)

// runState is a run's state directory, $StateRoot/run-XXXX, flock'd for the
// life of the supervisor. A directory whose lock can be taken belongs to a
// run that is gone (killed with -9, say) and is collected by the next run.
type runState struct {
	dir  string
	lock *os.File
}

// setCgroup records the run's cgroup so that a later run can remove it if
// this one is killed.
func (s *runState) setCgroup(dir string) {
	os.WriteFile(filepath.Join(s.dir, "cgroup"), []byte(dir), 0o600)
}

// ensureStateRoot creates root 0700 if needed and refuses one that another
// user owns or others can write: it will hold sockets and upper layers.
func ensureStateRoot(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return hint.With(fmt.Errorf("creating the state directory %s: %w", root, err),
			"set XDG_RUNTIME_DIR to a directory you own (systemd sets /run/user/$UID)")
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o022 != 0 {
		return hint.With(fmt.Errorf("state directory %s is not a directory owned by you and closed to others", root),
			"remove it, or set XDG_RUNTIME_DIR to a directory you own")
	}
	return nil
}

// newRunState creates and locks a fresh run directory under root, after
// collecting stale ones. The directory is built under a temporary name and
// renamed to run-* only once its lock is held, so that another hutch's
// collection never sees a run-* directory whose lock is free because its
// owner has not taken it yet.
func newRunState(root string) (*runState, error) {
	if err := ensureStateRoot(root); err != nil {
		return nil, err
	}
	collectStale(root)
	tmp, err := os.MkdirTemp(root, ".new-")
	if err != nil {
		return nil, fmt.Errorf("creating a run directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(tmp, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
		err = os.Mkdir(filepath.Join(tmp, "root"), 0o700)
	}
	dir := filepath.Join(root, "run-"+strings.TrimPrefix(filepath.Base(tmp), ".new-"))
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("preparing the run directory: %w", err)
	}
	return &runState{dir: dir, lock: f}, nil
}

func (s *runState) rootDir() string { return filepath.Join(s.dir, "root") }

// close removes the run directory and drops the lock.
func (s *runState) close() {
	os.RemoveAll(s.dir)
	s.lock.Close()
}

// collectStale removes run directories whose lock nobody holds.
func collectStale(root string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), ".new-") {
			// A run killed while preparing its directory; give one that is
			// preparing right now a minute.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(dir)
			}
			continue
		}
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "run-") {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
				(&cgroupRun{dir: string(cg)}).remove()
			}
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

// makeCaches makes the cache directories a plan binds that do not exist
// yet, as the tools themselves would (mode 0700, yours), so that what a
// first run caches is still there for the second.
func makeCaches(dirs []string) error {
	for _, d := range dirs {
		if _, err := os.Lstat(d); err == nil {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return hint.With(fmt.Errorf("making the cache directory %s: %w", d, err),
				"make it yourself, or drop the leading + from its filesystem.rw entry")
		}
	}
	return nil
}

// firstWarning reports whether the warning named what has not been given
// since boot, and records that it has: stateRoot lives in
// $XDG_RUNTIME_DIR, which a reboot empties. A warning repeated on every
// run is one users learn to skip.
func firstWarning(stateRoot, what string) bool {
	if stateRoot == "" {
		return true
	}
	f, err := os.OpenFile(filepath.Join(stateRoot, "warned-"+what), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return !errors.Is(err, os.ErrExist)
	}
	f.Close()
	return true
}
