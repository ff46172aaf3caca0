package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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
		return withHint(fmt.Errorf("creating the state directory %s: %w", root, err),
			"set XDG_RUNTIME_DIR to a directory you own (systemd sets /run/user/$UID)")
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o022 != 0 {
		return withHint(fmt.Errorf("state directory %s is not a directory owned by you and closed to others", root),
			"remove it, or set XDG_RUNTIME_DIR to a directory you own")
	}
	return nil
}

// newRunState creates and locks a fresh run directory under root, after
// collecting stale ones.
func newRunState(root string) (*runState, error) {
	if err := ensureStateRoot(root); err != nil {
		return nil, err
	}
	collectStale(root)
	dir, err := os.MkdirTemp(root, "run-")
	if err != nil {
		return nil, fmt.Errorf("creating a run directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o700); err != nil {
		f.Close()
		os.RemoveAll(dir)
		return nil, err
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
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "run-") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
		if os.IsNotExist(err) {
			// A run killed between mkdir and lock leaves no lock file; give
			// one that is starting now a minute to take its lock.
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(dir)
			}
			continue
		}
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
