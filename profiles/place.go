package profiles

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

// Where a project may be. The project is bound read-write, so a directory
// that other programs share, or one that holds a secret, must never become
// the project by accident: `cd /tmp && hutch run -- tmux -S
// /tmp/tmux-UID/default run-shell …` would reach a tmux server outside,
// and `cd ~/.ssh && hutch run -- cat id_ed25519` would print the key.
//
// The rule (docs/cli.md, "The project directory"):
//
//   - /proc, /sys, /dev, /run, /var/run and $XDG_RUNTIME_DIR, and
//     everything below them, are shared places: the machine's and other
//     programs' runtime state, full of sockets.
//   - /tmp, /var/tmp and $TMPDIR are shared places themselves. Below them,
//     a directory is yours alone when every directory from the temporary
//     root down to it is a real directory you own that no one else may
//     write to (group-writable only with your own primary group), and it
//     holds no socket at its top level (/tmp/tmux-UID and /tmp/ssh-XXXX
//     are yours, but are where tmux and ssh-agent listen). `mktemp -d`
//     makes such a directory.
//   - Your home and its ancestors are never bound as the project (NewPlan
//     leaves them out with a note), so they are not checked here.
//
// The working directory as the implicit project (no hutch.toml, no
// --project) is refused in a shared place. A hutch.toml there asks for
// trust; --project there runs, with a note.

// discover walks up from dir, stopping before / and before each of stops
// (home, and the places shared with other programs: anyone may leave a
// hutch.toml in /tmp).
func discover(dir string, stops []string) (string, error) {
	dir = filepath.Clean(dir)
	for {
		if dir == "/" || slices.Contains(stops, dir) {
			return "", nil
		}
		var found []string
		for _, n := range projectFileNames {
			p := filepath.Join(dir, n)
			fi, err := os.Lstat(p)
			if err != nil {
				continue
			}
			if err := projectFileError(p, fi); err != nil {
				return "", err
			}
			found = append(found, p) // readFile refuses what is not a regular file
		}
		if len(found) > 1 {
			return "", &Error{File: found[1], Msg: "both " + projectFileNames[0] + " and " + projectFileNames[1] + " are here; hutch would not know which to use",
				Tip: "merge them into one and remove the other"}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

// projectFileError refuses a project profile that is a symlink or a
// directory. Trust binds a profile's content to the project it governs, the
// directory it sits in: a link would borrow the approval given to its
// target, and move the project to wherever it points.
func projectFileError(path string, fi fs.FileInfo) *Error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0 && !mutate.Off("trust-symlink"):
		target, _ := os.Readlink(path)
		return &Error{File: path, Msg: fmt.Sprintf("is a symlink (to %s); a project's profile must be a file in the project it governs", target),
			Tip: fmt.Sprintf("copy the file here, or write a hutch.toml of this project's own with extends = [%q]", target)}
	case fi.IsDir():
		return &Error{File: path, Msg: "is a directory, not a profile", Tip: "hutch reads a file of this name as the project's profile: rename or remove the directory"}
	}
	return nil
}

// systemTrees are shared places together with everything below them.
var systemTrees = []string{"/proc", "/sys", "/dev", "/run", "/var/run"}

// tempRoots are shared places; below them only private directories are not.
var tempRoots = []string{"/tmp", "/var/tmp"}

// places are the shared trees and temporary roots of this caller.
type places struct{ trees, temps []string }

// placeRoots returns the shared trees and temporary roots for this caller:
// the fixed ones, $XDG_RUNTIME_DIR and $TMPDIR, resolved.
func (p *Profile) placeRoots() (trees, temps []string) {
	if p.places != nil {
		return p.places.trees, p.places.temps
	}
	trees = append(trees, systemTrees...)
	if d, ok := p.lookup("XDG_RUNTIME_DIR"); ok && filepath.IsAbs(d) {
		trees = append(trees, resolve(d))
	}
	temps = append(temps, tempRoots...)
	// $TMPDIR is where ssh-agent and tmux put their sockets when it is set;
	// a TMPDIR of home or above says nothing about sharing.
	if d, ok := p.lookup("TMPDIR"); ok && filepath.IsAbs(d) {
		d = resolve(d)
		if !within(d, p.realHome) && !within(d, p.home) {
			temps = append(temps, d)
		}
	}
	p.places = &places{trees, temps}
	return trees, temps
}

// sharedPlace says why dir (resolved) is shared with other programs, or ""
// when it is a place of your own.
func (p *Profile) sharedPlace(dir string) string {
	if within(dir, p.realHome) || within(dir, p.home) || mutate.Off("place-shared") {
		return "" // home or above: never bound as the project
	}
	trees, temps := p.placeRoots()
	for _, t := range trees {
		if !within(t, dir) {
			continue
		}
		what := "where the system and other programs keep their runtime state and sockets"
		if t == "/proc" || t == "/sys" || t == "/dev" {
			what = "the kernel's view of the machine"
		}
		if dir == t {
			return fmt.Sprintf("%s is %s", dir, what)
		}
		return fmt.Sprintf("%s is inside %s, %s", dir, t, what)
	}
	for _, t := range temps {
		switch {
		case dir == t:
			return fmt.Sprintf("%s is a temporary directory shared with other programs, which keep their sockets there (tmux, ssh-agent, X11)", dir)
		case within(t, dir):
			if why := privateBelow(t, dir); why != "" {
				return why
			}
		}
	}
	return ""
}

// privateBelow checks a directory below the temporary root t: every
// directory from t's child down to dir must be a real directory of the
// caller's that no one else can write to, and dir must hold no socket at
// its top level. It says what is wrong, or "".
func privateBelow(t, dir string) string {
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	cur := t
	for _, el := range strings.Split(strings.TrimPrefix(dir, t+"/"), "/") {
		cur = filepath.Join(cur, el)
		fi, err := os.Lstat(cur)
		if err != nil {
			return fmt.Sprintf("%s, below the shared %s, cannot be checked: %s", cur, t, unwrapPathErr(err))
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case !fi.IsDir() || st == nil:
			return fmt.Sprintf("%s, below the shared %s, is not a directory of its own", cur, t)
		case st.Uid != uid:
			return fmt.Sprintf("%s, below the shared %s, belongs to uid %d, not to you", cur, t, st.Uid)
		case st.Mode&0o002 != 0:
			return fmt.Sprintf("%s, below the shared %s, is writable by everyone (mode %o)", cur, t, st.Mode&0o7777)
		case st.Mode&0o020 != 0 && st.Gid != gid:
			return fmt.Sprintf("%s, below the shared %s, is writable by group %d (mode %o)", cur, t, st.Gid, st.Mode&0o7777)
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Sprintf("%s, below the shared %s, cannot be read: %s", dir, t, unwrapPathErr(err))
	}
	defer f.Close()
	for {
		ents, err := f.ReadDir(256)
		for _, e := range ents {
			if e.Type()&os.ModeSocket != 0 {
				return fmt.Sprintf("%s holds the socket %s, where another program listens (as tmux and ssh-agent do in their own directories)", dir, e.Name())
			}
		}
		if err != nil || len(ents) == 0 {
			return ""
		}
	}
}

// secretProject returns the secret path that dir (resolved) is (exact), or
// lies inside, or "". Secrets are the built-in list and hutch's own
// configuration (with its trust store) and data. They are compared by
// identity (device and inode), each directory from / down to dir against
// each existing secret, so that a symlinked spelling, a secret that is
// itself a symlink (~/.ssh -> dotfiles/ssh), /proc/self/fd/N or a bind
// mount of the secret elsewhere all count.
func (p *Profile) secretProject(dir string) (secret string, exact bool) {
	if mutate.Off("place-secret") {
		return "", false
	}
	var cands []string
	for _, rel := range secretPaths {
		cands = append(cands, filepath.Join(p.home, rel))
		if p.realHome != p.home {
			cands = append(cands, filepath.Join(p.realHome, rel))
		}
	}
	cands = append(cands, p.configDir, session.DataDir(p.home))
	type ident struct{ dev, ino uint64 }
	secrets := map[ident]string{}
	for _, c := range cands {
		fi, err := os.Stat(c)
		if err != nil || !fi.IsDir() {
			continue // a file cannot hold a project
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			id := ident{uint64(st.Dev), st.Ino}
			if _, seen := secrets[id]; !seen {
				secrets[id] = c
			}
		}
	}
	if len(secrets) == 0 {
		return "", false
	}
	cur := "/"
	for _, el := range append([]string{""}, strings.Split(strings.TrimPrefix(dir, "/"), "/")...) {
		cur = filepath.Join(cur, el)
		fi, err := os.Stat(cur)
		if err != nil {
			return "", false
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if s, hit := secrets[ident{uint64(st.Dev), st.Ino}]; hit {
				return s, cur == dir
			}
		}
	}
	return "", false
}

// checkProject refuses a project that is a secret, or (when it is only the
// working directory) a place shared with other programs. An explicit
// --project in a shared place runs, with a note.
func (p *Profile) checkProject(errs *errList) {
	dir, flag := p.projectDir, false
	if s := p.settings["filesystem.project_dir"]; s != nil && s.set {
		if v, ok := s.value.(string); ok && v != "" {
			dir, flag = v, true
		}
	}
	if within(dir, p.realHome) || within(dir, p.home) {
		return // home or above: NewPlan does not bind it
	}
	where := "the working directory " + tilde(dir, p.home)
	if flag {
		where = "the project " + tilde(dir, p.home)
	} else if p.projectFound {
		where = "the project " + tilde(dir, p.home) + " (where " + p.profileName() + " is)"
	}
	if sec, exact := p.secretProject(dir); sec != "" {
		what := fmt.Sprintf("%s is the secret %s", where, tilde(sec, p.home))
		if !exact {
			what = fmt.Sprintf("%s is inside the secret %s", where, tilde(sec, p.home))
		}
		errs.add(&Error{Msg: what + "; hutch never makes a secret the project",
			Tip: "run from a project directory (mkdir ~/work/NAME), or name one with --project DIR; to share a secret on purpose, bind it: --ro " + tilde(sec, p.home)})
		return
	}
	why := p.sharedPlace(dir)
	switch {
	case why == "":
	case flag:
		p.notes = append(p.notes, fmt.Sprintf("--project %s: %s; hutch covers the sockets it finds there (filesystem.sockets lets one through)", dir, why))
	case p.projectFound:
		// A hutch.toml in a shared place asks for trust (Load, placeAsks).
	default:
		errs.add(&Error{Msg: fmt.Sprintf("%s is not a project: %s", where, why),
			Tip: "make a directory for the work and run there (mkdir ~/work/NAME, or mktemp -d), or name the project with --project DIR"})
	}
}

// profileName names the project's profile for messages.
func (p *Profile) profileName() string {
	if p.projectFile == "" {
		return "hutch.toml"
	}
	return displayPath(p.projectFile, p.cwd, p.home)
}

// placeAsks: a project profile found in a shared place makes that place the
// project, which is a widening (a hutch.toml planted in /tmp by anyone).
func (p *Profile) placeAsks() []Ask {
	if !p.projectFound || p.chosen || len(p.trustFiles) == 0 {
		return nil
	}
	why := p.sharedPlace(p.projectDir)
	if why == "" {
		return nil
	}
	f := p.trustFiles[0]
	src := Source{Kind: FromProject, File: f.display, Path: f.path, layer: layerProject}
	return []Ask{{Key: "project", Value: fmt.Sprintf("%q", p.projectDir), What: "makes a shared place the project: " + why, Src: src}}
}

// Notes are things the user should know about the profile as resolved
// (printed by the CLI as "hutch: note: …").
func (p *Profile) Notes() []string { return p.notes }
