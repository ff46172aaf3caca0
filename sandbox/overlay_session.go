package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/nsprobe"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
	"github.com/hutch-sandbox/hutch/userns"
)

// A session directory, $XDG_DATA_HOME/hutch/sessions/NAME (0700):
//
//	session.json   sessionMeta
//	lock           flock'd by whoever uses the session; holds its pid
//	baseline       the project as the session began (layers.Baseline)
//	layers/LAYER/upper, layers/LAYER/work
//
// A run that keeps nothing uses a directory ".run-XXXX" beside them,
// removed when it ends (or by the next run, if it was killed).

// sessionMeta is session.json.
type sessionMeta struct {
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
	// (session_scaffold.go).
	Scaffold map[string][]string `json:"scaffold,omitempty"`
	// The id maps of the runs: files in the upper layers may belong to any
	// id in them, and hutch reads and removes them inside a user namespace
	// with the same maps when they do not all belong to you.
	UIDMap     []userns.Mapping `json:"uid_map"`
	GIDMap     []userns.Mapping `json:"gid_map"`
	MapHelpers bool             `json:"map_helpers,omitempty"`
	// Running is how sessions made before the "running" file marked a
	// run in progress; read, never written.
	Running *runMark `json:"running,omitempty"`
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
func runningFile(m runMark) string {
	return fmt.Sprintf("running.%d.%d", m.PID, m.Started.UnixNano())
}

// lastRunning is the mark a run left that did not end, or nil.
func lastRunning(dir string, m *sessionMeta) *runMark {
	marks, _ := filepath.Glob(filepath.Join(dir, "running.*"))
	for _, p := range marks {
		var pid int
		var started int64
		if _, err := fmt.Sscanf(filepath.Base(p), "running.%d.%d", &pid, &started); err == nil {
			return &runMark{PID: pid, Started: time.Unix(0, started)}
		}
	}
	if m != nil {
		return m.Running
	}
	return nil
}

type runMark struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

const metaFile = "session.json"

func readMeta(dir string) (*sessionMeta, error) {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var m sessionMeta
	if err := wireUnmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, metaFile), err)
	}
	return &m, nil
}

func writeMeta(dir string, m *sessionMeta) error {
	data, err := wireMarshal(m)
	if err != nil {
		return err
	}
	var ind bytes.Buffer
	json.Indent(&ind, data, "", "  ")
	return writeFileAtomic(filepath.Join(dir, metaFile), append(ind.Bytes(), '\n'))
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

// lockSession takes dir's lock, or says who holds it.
func lockSession(dir, name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid := flockHolder(f)
		f.Close()
		return nil, withHint(&SessionInUseError{Name: name, PID: pid},
			"one run at a time per session: wait for it, or use another name")
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// lockNewRun locks a fresh run directory (one that keeps nothing). The
// lock file appears under its name already locked and holding our pid: a
// lock file that showed up empty and unlocked, even for an instant, could
// be taken by another run's collectStaleRuns, which would then remove
// this run's layers, or make it fail as "in use by pid 0".
func lockNewRun(dir string) (*os.File, error) {
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

// ensureSessionsDir creates the sessions directory 0700 and refuses one
// that others could write: its upper layers become the sandbox's files.
func ensureSessionsDir(dir string) error {
	// $XDG_DATA_HOME (~/.local/share) as usual; hutch's own part 0700.
	os.MkdirAll(filepath.Dir(filepath.Dir(dir)), 0o755)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return withHint(fmt.Errorf("creating the sessions directory %s: %w", dir, err),
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

// runLayers is a run's view of its session: it prepares the upper layers
// before init starts, and reports and cleans up after the run.
type runLayers struct {
	lp     *LayersPlan
	plan   *Plan
	name   string // the session's, or "" when nothing is kept
	dir    string
	lock   *os.File
	meta   *sessionMeta
	driver string
	// driverWhy says how the driver was chosen (--verbose).
	driverWhy string
	// baseline is closed once the project's baseline is recorded.
	baseline chan error
	warn     func(string)
	// stopped is why hutch stopped the run, recorded in the session.
	stopped string
	// mark is this run's running.* mark (kept sessions).
	mark *runMark
}

// openRunLayers prepares the session of plan; nil when nothing is overlaid.
func openRunLayers(ctx context.Context, plan *Plan, opts LaunchOptions) (*runLayers, error) {
	lp := plan.Layers
	if lp == nil {
		return nil, nil
	}
	r := &runLayers{lp: lp, plan: plan, name: lp.Session, warn: opts.Warn}
	if err := ensureSessionsDir(lp.Dir); err != nil {
		return nil, err
	}
	collectStaleRuns(lp.Dir)
	var err error
	if r.name != "" {
		if r.dir, err = runSessionDir(lp.Dir, lp.Project, r.name); err != nil {
			return nil, err
		}
		if err := os.Mkdir(r.dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	} else if r.dir, err = os.MkdirTemp(lp.Dir, ".run-"); err != nil {
		return nil, err
	}
	if r.name == "" {
		r.lock, err = lockNewRun(r.dir)
		if err != nil {
			os.RemoveAll(r.dir)
			return nil, fmt.Errorf("locking the run's layers in %s: %w", r.dir, err)
		}
	} else if r.lock, err = lockSession(r.dir, r.name); err != nil {
		return nil, err
	}
	fail := func(err error) (*runLayers, error) {
		r.close()
		return nil, err
	}
	r.meta, err = readMeta(r.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if r.meta == nil {
		r.meta = &sessionMeta{Version: 1, Name: r.name, Created: time.Now(), Layers: map[string]string{}}
	} else if err := r.check(); err != nil {
		return fail(err)
	}
	if last := lastRunning(r.dir, r.meta); last != nil && r.warn != nil {
		r.warn(fmt.Sprintf("session %s: its last run (pid %d, started %s) was killed before it ended; what it wrote until then is kept",
			r.name, last.PID, last.Started.Format("2006-01-02 15:04:05")))
	}
	if r.driver, err = r.resolveDriver(ctx); err != nil {
		return fail(err)
	}
	if opts.Info != nil {
		where := "thrown away when the run ends"
		if r.name != "" {
			where = "kept in session " + r.name
		}
		opts.Info(fmt.Sprintf("overlay driver: %s (%s); changes %s", r.driver, r.driverWhy, where))
	}
	for _, m := range plan.Mounts {
		if m.Kind != MountOverlay {
			continue
		}
		if err := r.prepareLayer(m); err != nil {
			return fail(err)
		}
		r.recordScaffold(m)
	}
	now := time.Now()
	r.meta.Project = lp.Project
	if r.meta.Project == "" {
		r.meta.Project = r.meta.Layers[LayerProject]
	}
	r.meta.Driver = r.driver
	r.meta.UIDMap, r.meta.GIDMap, r.meta.MapHelpers = plan.UIDMap, plan.GIDMap, plan.MapHelpers
	r.meta.Running = nil
	if err := writeMeta(r.dir, r.meta); err != nil {
		return fail(err)
	}
	if r.name != "" {
		// A killed run's mark has been reported (above): this run's
		// replaces it.
		old, _ := filepath.Glob(filepath.Join(r.dir, "running.*"))
		for _, p := range old {
			os.Remove(p)
		}
		r.mark = &runMark{PID: os.Getpid(), Started: now}
		if err := os.WriteFile(filepath.Join(r.dir, runningFile(*r.mark)), nil, 0o600); err != nil {
			return fail(err)
		}
	}
	if r.name != "" && lp.Project != "" {
		r.baseline = make(chan error, 1)
		go func() { r.baseline <- r.recordBaseline() }()
	}
	return r, nil
}

// check refuses a session made for something else.
func (r *runLayers) check() error {
	if r.meta.Project != "" && r.lp.Project != "" && r.meta.Project != r.lp.Project {
		return withHint(fmt.Errorf("session %s belongs to the project %s, not %s", r.name, r.meta.Project, r.lp.Project),
			"run it from that project, or use another session name")
	}
	for _, m := range r.plan.Mounts {
		if m.Kind == MountOverlay {
			if lower, ok := r.meta.Layers[m.Layer]; ok && lower != m.Src {
				return fmt.Errorf("session %s overlays %s on %s, not %s", r.name, m.Layer, lower, m.Src)
			}
		}
	}
	return nil
}

// resolveDriver picks the driver: a kept session's own, else the one
// asked, with "auto" meaning the kernel's when a probe mount works.
func (r *runLayers) resolveDriver(ctx context.Context) (string, error) {
	asked := r.lp.Driver
	d := asked
	r.driverWhy = "asked for"
	if r.meta.Driver != "" {
		if asked != OverlayAuto && asked != r.meta.Driver && !r.uppersEmpty() {
			return "", withHint(fmt.Errorf("session %s was made with the %s overlay driver, and its upper layer is in that driver's format", r.name, r.meta.Driver),
				"run it with --overlay %s (or auto), or start another session", r.meta.Driver)
		}
		if asked == OverlayAuto || asked == r.meta.Driver {
			d, r.driverWhy = r.meta.Driver, "the session's"
		}
	}
	if d == OverlayAuto {
		if ok, why := kernelOverlayWorks(ctx, r.lp.Dir); ok {
			d, r.driverWhy = OverlayKernel, "auto: "+why
		} else if r.lp.FuseOverlayfs != "" {
			d, r.driverWhy = OverlayFuse, "auto: the kernel's overlay does not work here: "+why
		} else {
			return "", withHint(fmt.Errorf("no overlay driver works here: the kernel's overlay failed (%s) and fuse-overlayfs is not installed", why),
				"install fuse-overlayfs (sudo apt-get install fuse-overlayfs fuse3); hutch doctor checks both")
		}
	}
	if d == OverlayFuse {
		if r.lp.FuseOverlayfs == "" {
			return "", withHint(errors.New("the fuse overlay driver needs fuse-overlayfs, which is not installed"),
				"sudo apt-get install fuse-overlayfs fuse3, or use --overlay kernel")
		}
		if err := unix.Access("/dev/fuse", unix.R_OK|unix.W_OK); err != nil {
			return "", withHint(fmt.Errorf("the fuse overlay driver needs /dev/fuse: %w", err),
				"sudo chmod 0666 /dev/fuse (hutch doctor explains), or use --overlay kernel")
		}
	}
	return d, nil
}

// uppersEmpty reports whether no layer of the session holds anything yet
// (a session whose first run failed may change driver).
func (r *runLayers) uppersEmpty() bool {
	for name := range r.meta.Layers {
		names, err := readDirNames(filepath.Join(r.dir, "layers", name, "upper"))
		if err != nil || len(names) > 0 {
			return false
		}
	}
	return true
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// prepareLayer makes a layer's upper and work directories. A new upper
// directory takes its lower's mode: the merged root shows the upper's.
func (r *runLayers) prepareLayer(m Mount) error {
	dir := filepath.Join(r.dir, "layers", m.Layer)
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(upper, 0o700); err == nil {
		if fi, err := os.Stat(m.Src); err == nil {
			os.Chmod(upper, fi.Mode().Perm())
		}
	} else if !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.Mkdir(work, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	r.meta.Layers[m.Layer] = m.Src
	if len(m.Lower) > 0 {
		if r.meta.Lowers == nil {
			r.meta.Lowers = map[string][]string{}
		}
		r.meta.Lowers[m.Layer] = m.Lower
	}
	return nil
}

func (r *runLayers) layer(name string) *layers.Layer {
	f, _ := layers.ParseFormat(r.driver)
	return &layers.Layer{Lower: r.meta.Layers[name], Lowers: r.meta.Lowers[name], Upper: filepath.Join(r.dir, "layers", name, "upper"), Format: f}
}

// recordBaseline records the project as this run found it: the whole tree
// for a new session; for a kept one, the paths it has not changed (the
// host's edits to those since are no conflict).
func (r *runLayers) recordBaseline() error {
	file := filepath.Join(r.dir, "baseline")
	b, err := layers.LoadBaseline(file)
	if err != nil {
		if b, err = layers.TakeBaseline(r.lp.Project); err != nil {
			return err
		}
	} else {
		touched, err := r.layer(LayerProject).Touched()
		if err != nil {
			return err
		}
		if err := b.Refresh(r.lp.Project, touched); err != nil {
			return err
		}
	}
	return b.Save(file)
}

func (r *runLayers) initInfo() *layersInit {
	if r == nil {
		return nil
	}
	dir := filepath.Join(r.dir, "layers")
	// init follows no symlink of yours on the way to a layer (hostopen.go);
	// hutch's own data directory may sit behind one (a dotfile manager's
	// ~/.local/share), and no sandbox can reach it to swap it.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return &layersInit{Dir: dir, Driver: r.driver, FuseOverlayfs: r.lp.FuseOverlayfs}
}

// finish prints the run's summary line when the project changed, and
// records the run in the session.
func (r *runLayers) finish(w io.Writer, ran bool) {
	if r == nil {
		return
	}
	if r.baseline != nil {
		if err := <-r.baseline; err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("session %s: recording the project's state, which apply checks conflicts against: %v", r.name, err))
		}
		r.baseline = nil
	}
	if ran {
		r.keepBase(r.summarize(w)) // session_counts.go, session_merge.go
	}
	if r.name != "" {
		// First the mark, which needs no space: whatever happens next,
		// the session must not claim that this run was killed.
		if r.mark != nil {
			if err := os.Remove(filepath.Join(r.dir, runningFile(*r.mark))); err != nil && r.warn != nil {
				r.warn(fmt.Sprintf("session %s: %v", r.name, err))
			}
		}
		r.meta.Running = nil
		r.meta.Stopped = r.stopped
		r.meta.Updated = time.Now()
		r.meta.Runs++
		if err := writeMeta(r.dir, r.meta); err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("session %s: the run ended, but recording it in %s failed: %v", r.name, metaFile, err))
		}
	}
}

// close drops the lock; a run that keeps nothing removes its layers.
func (r *runLayers) close() {
	if r == nil {
		return
	}
	if r.baseline != nil {
		<-r.baseline
	}
	if r.name == "" {
		s := &Session{dir: r.dir, meta: r.meta}
		if err := s.removeAll(); err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("removing the run's upper layers in %s: %v", r.dir, err))
		}
	}
	if r.lock != nil {
		r.lock.Close()
	}
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
	if home, err := os.UserHomeDir(); err == nil && isWithin(home, dir) {
		return "~" + strings.TrimPrefix(dir, home) + "/"
	}
	return dir + "/"
}

// collectStaleRuns removes the layers of runs that were killed.
func collectStaleRuns(dir string) {
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
			meta, _ := readMeta(d)
			s := &Session{dir: d, meta: meta}
			s.removeAll()
		}
		f.Close()
	}
}

// kernelOverlayWorks reports whether the kernel's overlay mounts in a user
// namespace with userxattr here, on the file system of dir. The answer is
// cached in dir per kernel release: the probe costs a process.
func kernelOverlayWorks(ctx context.Context, dir string) (bool, string) {
	var uts unix.Utsname
	unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	cache := filepath.Join(dir, ".kernel-overlay")
	if data, err := os.ReadFile(cache); err == nil {
		rel, verdict, ok := strings.Cut(strings.TrimSpace(string(data)), " ")
		if ok && rel == release {
			return verdict == "ok", "Linux " + release + ", cached in " + cache
		}
	}
	tmp, err := os.MkdirTemp(dir, ".probe-")
	if err != nil {
		return false, err.Error()
	}
	defer nsprobe.RemoveDir(tmp)
	attr := &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out := nsprobe.Run(ctx, attr, nil, "overlay", tmp)
	if out.Start {
		return false, out.Err // no user namespace: no sandbox either; don't cache
	}
	verdict, why := "ok", "a probe mount with userxattr worked"
	if !out.OK() {
		verdict, why = "no", out.Step+": "+out.Err
	}
	os.WriteFile(cache, []byte(release+" "+verdict+"\n"), 0o600)
	return verdict == "ok", why
}

// Session is a kept session, for hutch diff, apply, discard and sessions.
type Session struct {
	Name string
	dir  string
	meta *sessionMeta
	lock *os.File
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
	return sessionsDir(DataDir(home)), nil
}

// OpenSession opens the kept session name.
func OpenSession(name string) (*Session, error) {
	if !validSessionName(name) {
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
	f, err := lockSession(s.dir, s.Name)
	if err != nil {
		return err
	}
	s.lock = f
	// Re-read: a run may have ended meanwhile.
	if m, err := readMeta(s.dir); err == nil {
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
		m, err := readMeta(d)
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
		if s.meta, err = readMeta(s.dir); err != nil {
			info.Error = err.Error()
			out = append(out, info)
			continue
		}
		m := s.meta
		info.Project, info.Driver, info.Created, info.Updated, info.Runs = m.Project, m.Driver, m.Created, m.Updated, m.Runs
		info.Layers = s.Layers()
		info.InUse = lockHolder(s.dir)
		info.Interrupted = lastRunning(s.dir, m) != nil && info.InUse == 0
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

// opRequest is one operation on a session's layers, run here or in the
// helper (overlay_helper.go).
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
				return nil, withHint(fmt.Errorf("%w (%v)", layers.ErrNoBaseline, err),
					"check the changes with hutch diff, then apply with --force")
			}
			base = nil
		}
		store := baseStore(req.Dir)
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
	for _, d := range systemDirs {
		if isWithin("/"+d, abs) {
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

// OverlayDriverReason says why an overlay driver cannot be used here, or
// "" when it can (for tests and hutch doctor).
func OverlayDriverReason(driver string) string {
	switch driver {
	case OverlayKernel:
		tmp, err := os.MkdirTemp("", "hutch-overlay-")
		if err != nil {
			return err.Error()
		}
		defer nsprobe.RemoveDir(tmp)
		os.Remove(filepath.Join(tmp, ".kernel-overlay"))
		if ok, why := kernelOverlayWorks(context.Background(), tmp); !ok {
			return "the kernel's overlay does not work in a user namespace here: " + why
		}
	case OverlayFuse:
		if findFuseOverlayfs() == "" {
			return "fuse-overlayfs is not installed"
		}
		if err := unix.Access("/dev/fuse", unix.R_OK|unix.W_OK); err != nil {
			return "/dev/fuse cannot be opened for reading and writing: " + err.Error()
		}
	default:
		return fmt.Sprintf("unknown overlay driver %q", driver)
	}
	return ""
}
