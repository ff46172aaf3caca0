package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/nsprobe"
	"github.com/hutch-sandbox/hutch/internal/paths"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
	"github.com/hutch-sandbox/hutch/sandbox/session"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// runLayers is a run's view of its session: it prepares the upper layers
// before init starts, and reports and cleans up after the run.
type runLayers struct {
	lp     *sandbox.LayersPlan
	plan   *sandbox.Plan
	name   string // the session's, or "" when nothing is kept
	dir    string
	lock   *os.File
	meta   *session.Meta
	driver string
	// driverWhy says how the driver was chosen (--verbose).
	driverWhy string
	// baseline is closed once the project's baseline is recorded.
	baseline chan error
	warn     func(string)
	// stopped is why hutch stopped the run, recorded in the session.
	stopped string
	// mark is this run's running.* mark (kept sessions).
	mark *session.RunMark
}

// openRunLayers prepares the session of plan; nil when nothing is overlaid.
func openRunLayers(ctx context.Context, plan *sandbox.Plan, opts LaunchOptions) (*runLayers, error) {
	lp := plan.Layers
	if lp == nil {
		return nil, nil
	}
	r := &runLayers{lp: lp, plan: plan, name: lp.Session, warn: opts.Warn}
	if err := session.EnsureDir(lp.Dir); err != nil {
		return nil, err
	}
	session.CollectStaleRuns(lp.Dir)
	var err error
	if r.name != "" {
		if r.dir, err = session.RunDir(lp.Dir, lp.Project, r.name); err != nil {
			return nil, err
		}
		if err := os.Mkdir(r.dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	} else if r.dir, err = os.MkdirTemp(lp.Dir, ".run-"); err != nil {
		return nil, err
	}
	if r.name == "" {
		r.lock, err = session.LockNewRun(r.dir)
		if err != nil {
			os.RemoveAll(r.dir)
			return nil, fmt.Errorf("locking the run's layers in %s: %w", r.dir, err)
		}
	} else if r.lock, err = session.LockSession(r.dir, r.name); err != nil {
		return nil, err
	}
	fail := func(err error) (*runLayers, error) {
		r.close()
		return nil, err
	}
	r.meta, err = session.ReadMeta(r.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if r.meta == nil {
		r.meta = &session.Meta{Version: 1, Name: r.name, Created: time.Now(), Layers: map[string]string{}}
	} else if err := r.check(); err != nil {
		return fail(err)
	}
	if last := session.LastRunning(r.dir, r.meta); last != nil && r.warn != nil {
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
		if m.Kind != sandbox.MountOverlay {
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
		r.meta.Project = r.meta.Layers[sandbox.LayerProject]
	}
	r.meta.Driver = r.driver
	r.meta.UIDMap, r.meta.GIDMap, r.meta.MapHelpers = plan.UIDMap, plan.GIDMap, plan.MapHelpers
	r.meta.Running = nil
	if err := session.WriteMeta(r.dir, r.meta); err != nil {
		return fail(err)
	}
	if r.name != "" {
		// A killed run's mark has been reported (above): this run's
		// replaces it.
		old, _ := filepath.Glob(filepath.Join(r.dir, "running.*"))
		for _, p := range old {
			os.Remove(p)
		}
		r.mark = &session.RunMark{PID: os.Getpid(), Started: now}
		if err := os.WriteFile(filepath.Join(r.dir, session.RunningFile(*r.mark)), nil, 0o600); err != nil {
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
		return hint.With(fmt.Errorf("session %s belongs to the project %s, not %s", r.name, r.meta.Project, r.lp.Project),
			"run it from that project, or use another session name")
	}
	for _, m := range r.plan.Mounts {
		if m.Kind == sandbox.MountOverlay {
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
		if asked != sandbox.OverlayAuto && asked != r.meta.Driver && !r.uppersEmpty() {
			return "", hint.With(fmt.Errorf("session %s was made with the %s overlay driver, and its upper layer is in that driver's format", r.name, r.meta.Driver),
				"run it with --overlay %s (or auto), or start another session", r.meta.Driver)
		}
		if asked == sandbox.OverlayAuto || asked == r.meta.Driver {
			d, r.driverWhy = r.meta.Driver, "the session's"
		}
	}
	if d == sandbox.OverlayAuto {
		if ok, why := kernelOverlayWorks(ctx, r.lp.Dir); ok {
			d, r.driverWhy = sandbox.OverlayKernel, "auto: "+why
		} else if r.lp.FuseOverlayfs != "" {
			d, r.driverWhy = sandbox.OverlayFuse, "auto: the kernel's overlay does not work here: "+why
		} else {
			return "", hint.With(fmt.Errorf("no overlay driver works here: the kernel's overlay failed (%s) and fuse-overlayfs is not installed", why),
				"install fuse-overlayfs (sudo apt-get install fuse-overlayfs fuse3); hutch doctor checks both")
		}
	}
	if d == sandbox.OverlayFuse {
		if r.lp.FuseOverlayfs == "" {
			return "", hint.With(errors.New("the fuse overlay driver needs fuse-overlayfs, which is not installed"),
				"sudo apt-get install fuse-overlayfs fuse3, or use --overlay kernel")
		}
		if err := unix.Access("/dev/fuse", unix.R_OK|unix.W_OK); err != nil {
			return "", hint.With(fmt.Errorf("the fuse overlay driver needs /dev/fuse: %w", err),
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
func (r *runLayers) prepareLayer(m sandbox.Mount) error {
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
		touched, err := r.layer(sandbox.LayerProject).Touched()
		if err != nil {
			return err
		}
		if err := b.Refresh(r.lp.Project, touched); err != nil {
			return err
		}
	}
	return b.Save(file)
}

func (r *runLayers) initInfo() *wire.LayersInit {
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
	return &wire.LayersInit{Dir: dir, Driver: r.driver, FuseOverlayfs: r.lp.FuseOverlayfs}
}

// finish prints the run's summary line when the project changed, and
// records the run in the session; it returns the changes counted (nil
// when the command did not run).
func (r *runLayers) finish(w io.Writer, ran bool) *Changes {
	if r == nil {
		return nil
	}
	var out *Changes
	if r.baseline != nil {
		if err := <-r.baseline; err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("session %s: recording the project's state, which apply checks conflicts against: %v", r.name, err))
		}
		r.baseline = nil
	}
	if ran {
		ls := r.summarize(w) // below, with sandbox/session's counts
		r.keepBase(ls)
		out = &Changes{Session: r.name, Layers: ls}
	}
	if r.name != "" {
		// First the mark, which needs no space: whatever happens next,
		// the session must not claim that this run was killed.
		if r.mark != nil {
			if err := os.Remove(filepath.Join(r.dir, session.RunningFile(*r.mark))); err != nil && r.warn != nil {
				r.warn(fmt.Sprintf("session %s: %v", r.name, err))
			}
		}
		r.meta.Running = nil
		r.meta.Stopped = r.stopped
		r.meta.Updated = time.Now()
		r.meta.Runs++
		if err := session.WriteMeta(r.dir, r.meta); err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("session %s: the run ended, but recording it in %s failed: %v", r.name, session.MetaFile, err))
		}
	}
	return out
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
		s := session.ForRun("", r.dir, r.meta)
		if err := s.Discard(); err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("removing the run's upper layers in %s: %v", r.dir, err))
		}
	}
	if r.lock != nil {
		r.lock.Close()
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

// OverlayDriverReason says why an overlay driver cannot be used here, or
// "" when it can (for tests and hutch doctor).
func OverlayDriverReason(driver string) string {
	switch driver {
	case sandbox.OverlayKernel:
		tmp, err := os.MkdirTemp("", "hutch-overlay-")
		if err != nil {
			return err.Error()
		}
		defer nsprobe.RemoveDir(tmp)
		os.Remove(filepath.Join(tmp, ".kernel-overlay"))
		if ok, why := kernelOverlayWorks(context.Background(), tmp); !ok {
			return "the kernel's overlay does not work in a user namespace here: " + why
		}
	case sandbox.OverlayFuse:
		if sandbox.FindFuseOverlayfs() == "" {
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

// summarize prints the run's summary line when any layer changed.
func (r *runLayers) summarize(w io.Writer) []session.LayerChanges {
	s := session.ForRun(r.name, r.dir, r.meta)
	ls, err := s.AllChanges()
	if err != nil {
		if r.warn != nil {
			r.warn(fmt.Sprintf("counting the run's changes: %v", err))
		}
		return nil
	}
	if len(ls) == 0 {
		return nil
	}
	what := session.SummarizeLayers(ls, func(l session.LayerChanges) string {
		later := 0
		for _, c := range l.Changes {
			if c.RunsLater != "" {
				later++
			}
		}
		if r.name == "" || later == 0 {
			return ""
		}
		return fmt.Sprintf(" (%d the host runs later, which apply holds back)", later)
	})
	if r.name == "" {
		fmt.Fprintf(w, "hutch: %s, thrown away (hutch run --keep NAME keeps them)\n", what)
		return ls
	}
	fmt.Fprintf(w, "hutch: %s — hutch diff %s | hutch apply %s | hutch discard %s\n", what, r.name, r.name, r.name)
	return ls
}

// keepBase records, when a kept run ends, the host's content of each
// project file the session modified and the host has not changed since
// the session began. It is done once per file: later runs find it kept.
func (r *runLayers) keepBase(ls []session.LayerChanges) {
	if r.name == "" || r.lp.Project == "" {
		return
	}
	for _, l := range ls {
		if l.Layer != sandbox.LayerProject {
			continue
		}
		b, err := layers.LoadBaseline(filepath.Join(r.dir, "baseline"))
		if err == nil {
			err = session.BaseStore(r.dir).Keep(r.lp.Project, l.Changes, b)
		}
		if err != nil && r.warn != nil {
			r.warn(fmt.Sprintf("session %s: keeping the modified files' content for apply --merge: %v", r.name, err))
		}
	}
}

// recordScaffold adds the plan's mount points beneath the overlay m.
func (r *runLayers) recordScaffold(m sandbox.Mount) {
	set := map[string]bool{}
	for _, p := range r.meta.Scaffold[m.Layer] {
		set[p] = true
	}
	for _, o := range r.plan.Mounts {
		if o.Dst == m.Dst || !paths.Within(m.Dst, o.Dst) {
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
