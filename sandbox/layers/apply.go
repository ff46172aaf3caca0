package layers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// Outcome is what apply did with one change.
type Outcome string

const (
	Applied  Outcome = "applied"
	Conflict Outcome = "conflict" // the host path changed since the session began
	Refused  Outcome = "refused"  // never applied (a symlink out of the tree, a device)
	Skipped  Outcome = "skipped"  // not attempted (its directory was not applied, or an earlier error stopped apply)
	Held     Outcome = "held"     // runs later on the host: applied only when named or allowed (runlater.go)
	Failed   Outcome = "failed"
)

// Result is one change's outcome.
type Result struct {
	Path    string  `json:"path"`
	Kind    Kind    `json:"kind"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	// Under names the directory whose own change carried this one (a file
	// in a deleted directory); such results are not worth a line each.
	Under string `json:"under,omitempty"`
}

// Report sums an apply.
type Report struct {
	Results []Result        `json:"results"`
	Counts  map[Outcome]int `json:"counts"`
	// Stopped is the error that ended apply early (a full disk, say).
	Stopped string `json:"stopped,omitempty"`
	// Marked lists the merged files left with conflict markers.
	Marked []string `json:"marked,omitempty"`
}

// ApplyOptions select and constrain an apply.
type ApplyOptions struct {
	// Force applies over conflicts.
	Force bool
	// Baseline is the lower as the session began; required unless Force.
	// Apply updates it for the paths it changed.
	Baseline *Baseline
	// SymlinkOK allows a symlink whose target (absolute, cleaned) lies
	// outside the target tree; nil refuses every such link.
	SymlinkOK func(abs string) bool
	// RunLater says whether a change that runs later on the host (marked
	// by MarkRunsLater) may be applied; nil holds every one back.
	RunLater func(rel string) bool
	// Progress, when set, sees each result as it happens: if apply is cut
	// short, what it printed is what was applied.
	Progress func(Result)
	// MergeBase, when set, makes a conflict on a modified text file a
	// three-way merge (merge.go): it returns the file's content as the
	// session began.
	MergeBase func(rel string) ([]byte, bool)
}

// ErrNoBaseline is returned when conflicts cannot be detected.
var ErrNoBaseline = errors.New("there is no record of the project as the session began, so conflicts cannot be detected")

// stopErrnos end an apply: every later write would fail the same way.
var stopErrnos = []error{unix.ENOSPC, unix.EDQUOT, unix.EFBIG, unix.EIO, unix.EROFS}

// Apply makes changes (from Diff, possibly selected) on the host tree at
// target. Every destination is resolved beneath target with no symlink
// followed; files are written to a temporary name, synced and renamed over
// the old one, so that each is either old or new whatever happens; set-id
// bits are stripped; nothing is chowned (files are the caller's).
func (l *Layer) Apply(target string, changes []Change, opts ApplyOptions) (*Report, error) {
	if opts.Baseline == nil && !opts.Force {
		return nil, ErrNoBaseline
	}
	t, err := openTree(target)
	if err != nil {
		return nil, err
	}
	defer t.close()
	up, err := openTree(l.Upper)
	if err != nil {
		return nil, err
	}
	defer up.close()
	a := &applier{l: l, t: t, up: up, target: filepath.Clean(target), opts: opts,
		links: map[[2]uint64]string{}, rep: &Report{Counts: map[Outcome]int{}}}
	changes = append([]Change(nil), changes...)
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })

	var carried []string // paths whose change covered their whole subtree (with their outcome)
	carriedOutcome := map[string]Outcome{}
	var blocked []string // paths not applied: nothing beneath them can be
	var stop error
	for _, c := range changes {
		res := Result{Path: c.Path, Kind: c.Kind}
		if under := ancestorIn(c.Path, carried); under != "" {
			res.Outcome, res.Under = carriedOutcome[under], under
			a.record(res)
			continue
		}
		if c.RunsLater != "" && (a.opts.RunLater == nil || !a.opts.RunLater(c.Path)) && !mutate.Off("apply-runlater") {
			// Held before anything else: beneath a held directory each
			// path says for itself why it waits.
			res.Outcome, res.Reason = Held, c.RunsLater
			a.record(res)
			blocked = append(blocked, c.Path)
			continue
		}
		if under := ancestorIn(c.Path, blocked); under != "" {
			res.Outcome, res.Reason, res.Under = Skipped, under+" was not applied", under
			a.record(res)
			continue
		}
		if stop != nil {
			res.Outcome, res.Reason = Skipped, "not attempted after: "+stop.Error()
			a.record(res)
			continue
		}
		res.Outcome, res.Reason, err = a.one(c)
		if err != nil {
			res.Outcome, res.Reason = Failed, err.Error()
			var errno unix.Errno
			if errors.As(err, &errno) {
				// The temporary name and the call mean nothing to the user.
				res.Reason = errno.Error()
			}
			for _, e := range stopErrnos {
				if errors.Is(err, e) {
					stop = err
					a.rep.Stopped = err.Error()
				}
			}
		}
		a.record(res)
		if res.Outcome != Applied {
			blocked = append(blocked, c.Path)
		} else if c.Old != nil && c.Old.Type == TypeDir && (c.Kind == Deleted || c.Kind == TypeChanged) {
			// The directory went with everything in it.
			carried = append(carried, c.Path)
			carriedOutcome[c.Path] = Applied
		}
	}
	a.syncDirs()
	return a.rep, nil
}

// ancestorIn returns the entry of list that is a proper ancestor of p.
func ancestorIn(p string, list []string) string {
	for i := len(list) - 1; i >= 0; i-- {
		if strings.HasPrefix(p, list[i]+"/") {
			return list[i]
		}
	}
	return ""
}

type applier struct {
	l      *Layer
	t, up  *tree
	target string
	opts   ApplyOptions
	links  map[[2]uint64]string // upper (dev, ino) → host path it was applied to
	dirs   map[string]bool      // directories to sync at the end
	rep    *Report
}

func (a *applier) record(r Result) {
	a.rep.Results = append(a.rep.Results, r)
	a.rep.Counts[r.Outcome]++
	if a.opts.Progress != nil {
		a.opts.Progress(r)
	}
}

// one applies c and says how it went; err is for failures.
func (a *applier) one(c Change) (Outcome, string, error) {
	if reason := a.refusal(c); reason != "" {
		return Refused, reason, nil
	}
	host, err := a.t.lstat(c.Path)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
			return Conflict, "a directory above it on the host is now a symlink or not a directory", nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return Failed, "", err
		}
	}
	if !a.opts.Force {
		if reason, err := a.conflict(c, host); err != nil {
			return Failed, "", err
		} else if reason != "" {
			if a.opts.MergeBase != nil {
				return a.mergeOne(c, host) // merge.go
			}
			return Conflict, reason, nil
		}
	}
	pfd, base, err := a.t.parent(c.Path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Failed, "its directory is missing on the host", nil
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
			return Conflict, "a directory above it on the host is now a symlink or not a directory", nil
		}
		return Failed, "", err
	}
	defer unix.Close(pfd)
	a.markDir(path.Dir(c.Path))

	switch c.Kind {
	case Deleted:
		if host == nil {
			a.forget(c.Path)
			return Applied, "already gone", nil
		}
		if err := removeAt(pfd, base); err != nil {
			return Failed, "", err
		}
		a.forget(c.Path)
		return Applied, "", nil
	case ModeChanged:
		if host == nil {
			return Conflict, "deleted on the host since the session began", nil
		}
		if err := chmodAt(pfd, base, stripMode(c.New.Mode)); err != nil {
			return Failed, "", err
		}
		if c.Xattrs {
			if err := a.syncXattrs(c.Path, pfd, base); err != nil {
				return Failed, "", err
			}
		}
		a.restamp(pfd, base, c.Path)
		return Applied, "", nil
	}
	// Added, Modified, TypeChanged: make c.New at the path.
	if host != nil && (host.Mode&unix.S_IFMT == unix.S_IFDIR) != (c.New.Type == TypeDir) {
		if err := removeAt(pfd, base); err != nil {
			return Failed, "", err
		}
		a.forget(c.Path)
		host = nil
	}
	switch c.New.Type {
	case TypeDir:
		if host == nil {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return Failed, "", err
			}
		}
		if err := chmodAt(pfd, base, stripMode(c.New.Mode)); err != nil {
			return Failed, "", err
		}
		a.copyXattrs(c.Path, pfd, base, true)
	case TypeFile:
		if err := a.writeFile(pfd, base, c); err != nil {
			return Failed, "", err
		}
	case TypeSymlink:
		if err := replaceWith(pfd, base, func(tmp string) error { return unix.Symlinkat(c.New.Target, pfd, tmp) }); err != nil {
			return Failed, "", err
		}
	case TypeFifo:
		mode := stripMode(c.New.Mode)
		if err := replaceWith(pfd, base, func(tmp string) error {
			if err := unix.Mkfifoat(pfd, tmp, 0o600); err != nil {
				return err
			}
			return chmodAt(pfd, tmp, mode)
		}); err != nil {
			return Failed, "", err
		}
	}
	a.restamp(pfd, base, c.Path)
	return Applied, "", nil
}

// refusal is why c must never be applied, or "".
func (a *applier) refusal(c Change) string {
	if c.New == nil {
		return ""
	}
	switch c.New.Type {
	case TypeChar, TypeBlock:
		return "device nodes are not applied"
	case TypeSocket:
		return "sockets are not applied"
	case TypeSymlink:
		abs := c.New.Target
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(a.target, filepath.FromSlash(path.Dir(c.Path)), abs)
		}
		abs = filepath.Clean(abs)
		if abs != a.target && !strings.HasPrefix(abs, a.target+"/") && (a.opts.SymlinkOK == nil || !a.opts.SymlinkOK(abs)) && !mutate.Off("apply-symlink-out") {
			return fmt.Sprintf("a symlink to %s, outside %s", c.New.Target, a.target)
		}
	}
	return ""
}

// conflict says how the host path differs from the baseline, or "".
func (a *applier) conflict(c Change, host *unix.Stat_t) (string, error) {
	base, inBase := a.opts.Baseline.Entries[c.Path]
	switch {
	case inBase && host == nil:
		if c.Kind == Deleted {
			return "", nil
		}
		return "deleted on the host since the session began", nil
	case !inBase && host != nil:
		return "created on the host since the session began", nil
	case inBase && !base.Same(stampOf(host)):
		return "changed on the host since the session began", nil
	}
	// A directory that goes takes its contents: those must be as recorded.
	if host != nil && host.Mode&unix.S_IFMT == unix.S_IFDIR && (c.Kind == Deleted || c.Kind == TypeChanged) {
		p, err := a.t.changedBeneath(c.Path, a.opts.Baseline)
		if err != nil {
			return "", err
		}
		if p != "" {
			return fmt.Sprintf("%s changed on the host since the session began", p), nil
		}
	}
	return "", nil
}

// writeFile puts the upper's file c at pfd/base: a temporary file, synced,
// renamed over the old one. Hard links the session made between files it
// applies are kept.
func (a *applier) writeFile(pfd int, base string, c Change) error {
	sfd, err := a.up.open(c.Path, unix.O_RDONLY|unix.O_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("reading the session's copy: %w", err)
	}
	src := os.NewFile(uintptr(sfd), c.Path)
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("the session's copy is no longer a regular file")
	}
	key := [2]uint64{st.Dev, st.Ino}
	if first, ok := a.links[key]; ok && st.Nlink > 1 {
		ffd, fbase, err := a.t.parent(first)
		if err == nil {
			err = replaceWith(pfd, base, func(tmp string) error { return unix.Linkat(ffd, fbase, pfd, tmp, 0) })
			unix.Close(ffd)
		}
		if err == nil {
			return nil
		}
		// Fall back to a copy.
	}
	mode := stripMode(c.New.Mode)
	err = replaceWith(pfd, base, func(tmp string) error {
		fd, err := unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		dst := os.NewFile(uintptr(fd), tmp)
		defer dst.Close()
		if _, err := io.Copy(dst, src); err != nil {
			return err
		}
		if err := unix.Fchmod(fd, mode); err != nil {
			return err
		}
		if xs, err := UserXattrs(a.l.upperPath(c.Path)); err == nil {
			for k, v := range xs {
				unix.Fsetxattr(fd, k, v, 0)
			}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
		if err := unix.UtimesNanoAt(pfd, tmp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if err := dst.Sync(); err != nil {
			return err
		}
		return dst.Close()
	})
	if err == nil && st.Nlink > 1 {
		a.links[key] = c.Path
	}
	return err
}

// syncXattrs makes the host entry's user xattrs the upper's: set, and
// removed when the session removed them.
func (a *applier) syncXattrs(rel string, pfd int, base string) error {
	want, err := UserXattrs(a.l.upperPath(rel))
	if err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		return nil // never an xattr on a device or fifo of the host's
	}
	have, err := fdUserXattrs(fd)
	if err != nil {
		return err
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			if err := unix.Fremovexattr(fd, k); err != nil {
				return err
			}
		}
	}
	for k, v := range want {
		if err := unix.Fsetxattr(fd, k, v, 0); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) copyXattrs(rel string, pfd int, base string, dir bool) {
	xs, err := UserXattrs(a.l.upperPath(rel))
	if err != nil || len(xs) == 0 {
		return
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	for k, v := range xs {
		unix.Fsetxattr(fd, k, v, 0)
	}
}

// restamp records the host path as it is now, after our own change.
func (a *applier) restamp(pfd int, base, rel string) {
	if a.opts.Baseline == nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		a.opts.Baseline.Entries[rel] = stampOf(&st)
	}
}

func (a *applier) forget(rel string) {
	if a.opts.Baseline != nil {
		a.opts.Baseline.Forget(rel)
	}
}

func (a *applier) markDir(rel string) {
	if a.dirs == nil {
		a.dirs = map[string]bool{}
	}
	a.dirs[rel] = true
}

// syncDirs makes the renames durable.
func (a *applier) syncDirs() {
	for d := range a.dirs {
		fd, err := a.t.open(d, unix.O_RDONLY|unix.O_DIRECTORY)
		if err == nil {
			unix.Fsync(fd)
			unix.Close(fd)
		}
	}
}

func stripMode(m uint32) uint32 { return m &^ (unix.S_ISUID | unix.S_ISGID) }

// tmpName is a fresh name beside the destination.
func tmpName() string {
	var b [8]byte
	rand.Read(b[:])
	return ".hutch-apply-" + hex.EncodeToString(b[:])
}

// replaceWith makes a new entry under a temporary name with mk, then
// renames it over base: the old entry stays until the new one is whole.
func replaceWith(pfd int, base string, mk func(tmp string) error) error {
	tmp := tmpName()
	if err := mk(tmp); err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return err
	}
	if err := unix.Renameat(pfd, tmp, pfd, base); err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return err
	}
	return nil
}

// chmodAt changes the mode of pfd/base, never a symlink's target: through
// an O_PATH descriptor of the entry itself.
func chmodAt(pfd int, base string, mode uint32) error {
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil // a symlink has no mode of its own
	}
	return unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), mode)
}

// removeAt removes pfd/name and, for a directory, everything in it,
// without following any symlink.
func removeAt(pfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(pfd, name, 0)
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		if err := removeAt(fd, n); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	return unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
}
