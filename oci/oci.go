package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/ocispec"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// Runtime is hutch oci's global options: where state lives, the site
// profile, where messages go.
type Runtime struct {
	// Root is the state root (--root); default DefaultRoot().
	Root string
	// Profile is the site profile (--profile), or "".
	Profile string
	// Log receives warnings ("warning") and, with --debug, what hutch
	// provides its own way ("debug").
	Log func(level, msg string)
	// Stdio is the container's standard streams (create's and run's own).
	Stdio supervise.Stdio
}

func (r *Runtime) warn(msg string)  { r.Log("warning", msg) }
func (r *Runtime) debug(msg string) { r.Log("debug", msg) }

func (r *Runtime) root() (string, error) {
	if r.Root != "" {
		return r.Root, nil
	}
	return DefaultRoot()
}

// prepare plans a bundle: config.json, the site's policy over it, and the
// plan. tty is the Spec's terminal setting for it.
func (r *Runtime) prepare(bundle string, foreground bool) (*sandbox.Prepared, *ocispec.Bundle, string, error) {
	dir, err := filepath.Abs(bundle)
	if err != nil {
		return nil, nil, "", err
	}
	b, err := ocispec.Read(dir)
	if err != nil {
		return nil, nil, "", err
	}
	for _, w := range b.Warnings {
		r.warn(w)
	}
	for _, d := range b.Debug {
		r.debug(d)
	}
	tty := "never"
	if b.Terminal {
		if !foreground {
			return nil, nil, "", hint.With(errors.New("config.json: process.terminal: a terminal for a detached container needs --console-socket, which hutch does not support"),
				"set process.terminal to false, or use hutch oci run, which relays a terminal itself")
		}
		tty = "always"
	}
	site, err := siteSpec(r.Profile)
	if err != nil {
		return nil, nil, "", err
	}
	spec := applyBundle(b, site, tty, r.warn)
	prep, err := sandbox.Prepare(spec, nil)
	if err != nil {
		return nil, nil, "", err
	}
	for _, n := range prep.Plan.Notes {
		r.warn(n)
	}
	return prep, b, dir, nil
}

// Run is hutch oci run: the container in the foreground, signals relayed
// (supervise.Launch), removed when it ends. It returns the command's exit
// status.
func (r *Runtime) Run(ctx context.Context, id, bundle, pidFile string) (int, error) {
	root, err := r.root()
	if err != nil {
		return 0, err
	}
	s, err := openStore(root, true)
	if err != nil {
		return 0, err
	}
	defer s.close()
	c, err := s.create(id)
	if err != nil {
		return 0, err
	}
	defer c.close()
	defer c.remove()
	prep, b, dir, err := r.prepare(bundle, true)
	if err != nil {
		return 0, err
	}
	defer prep.Close()
	rec := newRecord(id, dir, b.Annotations)
	if err := c.write(rec); err != nil {
		return 0, err
	}
	opts := supervise.LaunchOptions{Warn: r.warn, Started: func(pid int) {
		rec.Status, rec.Pid, rec.PidStart = Running, pid, mustStart(pid)
		c.write(rec)
		writePidFile(pidFile, pid, r.warn)
	}}
	res, err := supervise.Launch(ctx, prep.Plan, r.Stdio, opts)
	if err != nil {
		return 0, err
	}
	return res.ExitCode, nil
}

// newRecord is the state of a container being created by this process.
func newRecord(id, bundle string, ann map[string]string) *record {
	return &record{OCIVersion: OCIVersion, ID: id, Status: Creating, Super: os.Getpid(), SuperStart: mustStart(os.Getpid()),
		Bundle: bundle, Annotations: ann, Created: time.Now().UTC()}
}

func mustStart(pid int) uint64 {
	st, _, _ := startTime(pid)
	return st
}

// writePidFile writes the container's pid as runc does: to a temporary
// name beside it, then renamed.
func writePidFile(path string, pid int, warn func(string)) error {
	if path == "" {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		err = fmt.Errorf("writing the pid file %s: %w", path, err)
		if warn != nil {
			warn(err.Error())
		}
	}
	return err
}

// look opens a container and works out its status from its record and
// its processes: a container whose supervisor or init is gone (killed
// with -9, say) is stopped whatever its record says.
func (r *Runtime) look(id string) (*store, *container, *record, error) {
	root, err := r.root()
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := openStore(root, false)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil, nil, fmt.Errorf("container %s: %w", id, errNotExist)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := s.open(id)
	if err != nil {
		s.close()
		return nil, nil, nil, err
	}
	rec, err := c.read()
	if err != nil {
		c.close()
		s.close()
		return nil, nil, nil, err
	}
	switch rec.Status {
	case Creating, Created, Running:
		if !alive(rec.Super, rec.SuperStart, c.uid) || rec.Status != Creating && !alive(rec.Pid, rec.PidStart, c.uid) {
			rec.Status = Stopped
		}
	case Stopped:
	default:
		rec.Status = Stopped
	}
	return s, c, rec, nil
}

// State is hutch oci state.
func (r *Runtime) State(id string) (*State, error) {
	s, c, rec, err := r.look(id)
	if err != nil {
		return nil, err
	}
	defer s.close()
	defer c.close()
	st := &State{OCIVersion: OCIVersion, ID: rec.ID, Status: rec.Status, Bundle: rec.Bundle, Annotations: rec.Annotations, Created: rec.Created}
	if rec.Status == Created || rec.Status == Running {
		st.Pid = rec.Pid
	}
	return st, nil
}

// Kill is hutch oci kill: sig to the container's init, which passes it to
// the command's process group (SIGKILL ends the whole sandbox; a held
// container ends on any signal that would end a command).
func (r *Runtime) Kill(id string, sig unix.Signal) error {
	s, c, rec, err := r.look(id)
	if err != nil {
		return err
	}
	defer s.close()
	defer c.close()
	switch rec.Status {
	case Creating:
		return fmt.Errorf("container %s is still being created", id)
	case Stopped:
		return fmt.Errorf("container %s is not running", id)
	}
	p, err := openProc(rec.Pid, rec.PidStart, c.uid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("container %s is not running", id)
		}
		return fmt.Errorf("container %s: %w", id, err)
	}
	defer p.close()
	if err := p.signal(sig); err != nil {
		return fmt.Errorf("container %s: signalling pid %d: %w", id, rec.Pid, err)
	}
	return nil
}

// Delete is hutch oci delete: a stopped (or created) container's state
// goes; a running one only with force, after SIGKILL. It waits for the
// supervisor to end before it removes anything.
func (r *Runtime) Delete(id string, force bool) error {
	s, c, rec, err := r.look(id)
	if err != nil {
		if force && errors.Is(err, errNotExist) {
			return nil
		}
		if force {
			return r.removeUnread(id, err)
		}
		return err
	}
	defer s.close()
	defer c.close()
	if rec.Status == Running && !force {
		return hint.With(fmt.Errorf("container %s is running", id), "stop it first (hutch oci kill %s KILL), or use delete --force", id)
	}
	// A pid that is not the recorded process of the directory's owner
	// (gone, reused, or another's named on purpose) is never signalled:
	// the container's own processes are not running then.
	if rec.Status != Stopped {
		if p, err := openProc(rec.Pid, rec.PidStart, c.uid); err == nil {
			p.signal(unix.SIGKILL)
			p.close()
		}
	}
	// The supervisor records the end and removes its socket: wait for it.
	if p, err := openProc(rec.Super, rec.SuperStart, c.uid); err == nil {
		if rec.Status == Creating {
			p.signal(unix.SIGKILL)
		}
		r.waitSupervisor(p, c.uid, id)
		p.close()
	}
	return c.remove()
}

// superviseGrace is how long a delete by another user than the
// container's owner (root, as Slurm runs it) waits for the supervisor to
// finish cleaning up before it kills it.
var superviseGrace = 10 * time.Second

// waitSupervisor waits for the container's supervisor to end. The pid is
// the record's claim, checked only for its owner and start time: the
// owner may have named any long-lived process of theirs, to hold root's
// delete (and the Slurm step that runs it) for ever. So another user's
// delete waits superviseGrace at most, then kills that process of the
// owner's: nothing the owner could not do themselves. The owner's own
// delete waits as long as it takes.
func (r *Runtime) waitSupervisor(p *proc, owner uint32, id string) {
	if owner == uint32(os.Getuid()) || mutate.Off("oci-delete-wait") {
		p.wait()
		return
	}
	if p.waitFor(superviseGrace) {
		return
	}
	r.warn(fmt.Sprintf("container %s: its supervisor (pid %d) did not end within %v; killing it", id, p.pid, superviseGrace))
	p.signal(unix.SIGKILL)
	p.wait()
}

// removeUnread is delete --force of a container whose state cannot be
// read (damaged, or a file planted in its place): its directory is
// removed, if it is one, and nothing is signalled.
func (r *Runtime) removeUnread(id string, why error) error {
	root, err := r.root()
	if err != nil {
		return err
	}
	s, err := openStore(root, false)
	if err != nil {
		return err
	}
	defer s.close()
	c, err := s.open(id)
	if err != nil {
		return err
	}
	defer c.close()
	r.warn(fmt.Sprintf("%v; removing its state directory without stopping anything", why))
	return c.remove()
}
