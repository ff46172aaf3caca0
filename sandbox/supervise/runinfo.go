package supervise

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox"
	"golang.org/x/sys/unix"
)

// RunInfo describes a running sandbox, for hutch ps. The supervisor writes
// it into its run directory (0700, under the caller's runtime directory)
// once hutch-init has started; it is removed with the directory.
type RunInfo struct {
	// ID is the run directory's suffix: run-ID.
	ID string `json:"id"`
	// PID is the supervisor's (hutch run's) pid; InitPID hutch-init's, in
	// the caller's pid namespace.
	PID     int       `json:"pid"`
	InitPID int       `json:"init_pid"`
	Dir     string    `json:"dir"` // where hutch was started
	Args    []string  `json:"args"`
	Started time.Time `json:"started"`
	Network string    `json:"network"`
	Session string    `json:"session,omitempty"`
	Image   string    `json:"image,omitempty"`
}

const runInfoFile = "info.json"

// writeInfo records what the run is; a failure only hides it from hutch ps.
func (s *runState) writeInfo(plan *sandbox.Plan, initPID int) {
	cwd, _ := os.Getwd()
	info := RunInfo{
		ID: strings.TrimPrefix(filepath.Base(s.dir), "run-"), PID: os.Getpid(), InitPID: initPID,
		Dir: cwd, Args: plan.Args, Started: time.Now().UTC(), Network: plan.Network,
	}
	if plan.Layers != nil {
		info.Session = plan.Layers.Session
	}
	if plan.Image != nil {
		info.Image = plan.Image.Name
	}
	data, err := json.Marshal(info)
	if err != nil {
		return
	}
	tmp := filepath.Join(s.dir, ".info.tmp")
	if os.WriteFile(tmp, data, 0o600) == nil {
		os.Rename(tmp, filepath.Join(s.dir, runInfoFile))
	}
}

// Running lists the sandboxes the caller is running: the run directories
// under stateRoot whose lock a live supervisor holds. A directory whose
// lock can be taken belongs to a run that is gone, and is not listed.
func Running(stateRoot string) ([]RunInfo, error) {
	ents, err := os.ReadDir(stateRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []RunInfo
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "run-") {
			continue
		}
		dir := filepath.Join(stateRoot, e.Name())
		if !lockHeld(filepath.Join(dir, "lock")) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, runInfoFile))
		if err != nil {
			continue // still starting: not a sandbox yet
		}
		var info RunInfo
		if json.Unmarshal(data, &info) == nil {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// lockHeld says whether another process holds the flock on path.
func lockHeld(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) == unix.EWOULDBLOCK
}
