package profiles

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Options say where Load looks. The zero value is what `hutch run` uses:
// the working directory, $HOME, the XDG config directory and the process
// environment.
type Options struct {
	// Dir is the working directory: relative paths in flags are relative
	// to it, and the search for hutch.toml starts there. Default: the
	// process's working directory.
	Dir string
	// ProjectDir is --project: the search for hutch.toml starts there
	// instead, and without a hutch.toml it is the project.
	ProjectDir string
	// Home is the caller's home; default $HOME.
	Home string
	// ConfigDir is hutch's configuration directory; default
	// $XDG_CONFIG_HOME/hutch, else ~/.config/hutch.
	ConfigDir string
	// LookupEnv reads the environment for ${VAR}; default os.LookupEnv.
	LookupEnv func(string) (string, bool)

	// Profile is --profile: a profile name or a path, used instead of the
	// project's hutch.toml. The project directory is still where hutch.toml
	// was found.
	Profile string
	// NoProject is --no-project-profile: no search for hutch.toml; the
	// project is the working directory.
	NoProject bool
	// ProjectFile names the project's profile instead of searching for it
	// (`hutch profile check PATH`, `hutch trust PATH`); its directory is
	// the project.
	ProjectFile string
	// Trust approves the project's profile for this run (--trust,
	// HUTCH_TRUST=1).
	Trust bool
}

// Project profile file names, in the order they are looked for.
var projectFileNames = []string{"hutch.toml", ".hutch.toml"}

// maxFileSize bounds a profile: they are a screenful, never megabytes.
const maxFileSize = 1 << 20

// file is one profile file: a built-in, one of the user's, or a project's.
type file struct {
	id      string // "builtin:NAME", or the resolved absolute path
	path    string // absolute path; "" for built-ins
	display string
	kind    SourceKind
	name    string // profile name, for built-ins and user profiles
	data    []byte
	layer   int
	x       expander
	via     *Source // the extends element that brought it in
	pos     *posIndex
}

// positions parses the file for positions, once.
func (f *file) positions() *posIndex {
	if f.pos == nil {
		f.pos = newPosIndex(f.data)
	}
	return f.pos
}

func (f *file) source(key []string, raw string) Source {
	return Source{Kind: f.kind, Name: f.name, File: f.display, Path: f.path,
		pos: &posRef{f: f, key: key, raw: raw}, layer: f.layer, via: f.via}
}

// FileInfo describes one profile applied, in order.
type FileInfo struct {
	Kind SourceKind `json:"kind"`
	Name string     `json:"name,omitempty"`
	// File is the display path, Path the absolute one.
	File string `json:"-"`
	Path string `json:"file,omitempty"`
	// Project marks the files of the project layer (those that trust
	// covers when they are not built-in or your own).
	Project bool `json:"project,omitempty"`
}

// Profile is the merged result of the built-in default, your own
// configuration, the project's profile and flags. Spec turns it into a
// sandbox.Spec.
type Profile struct {
	projectDir  string // resolved
	projectFile string // absolute path of the project's profile, or ""
	home        string // as given ($HOME)
	realHome    string // symlinks resolved
	cwd         string
	configDir   string
	lookup      func(string) (string, bool)

	files    []*file
	settings map[string]*setting
	base     map[string]*setting // after the base layer: what trust compares against

	asks       []Ask
	trustFiles []*file // files trust covers: the project's own, not built-ins or yours
	trust      TrustState
	chosen     bool // --profile NAME: picked by the user, not subject to trust

	projectFound bool     // the project directory is where a project profile is
	notes        []string // for the user (Notes)
	places       *places  // the shared places (placeRoots), once found
}

// ProjectDir is the project directory: where hutch.toml was found, else
// the working directory.
func (p *Profile) ProjectDir() string { return p.projectDir }

// ProjectFile is the absolute path of the project's profile in use, or "".
func (p *Profile) ProjectFile() string { return p.projectFile }

// ConfigDir is hutch's configuration directory.
func (p *Profile) ConfigDir() string { return p.configDir }

// Files lists the profiles applied, in order.
func (p *Profile) Files() []FileInfo {
	var out []FileInfo
	for _, f := range p.files {
		out = append(out, FileInfo{Kind: f.kind, Name: f.name, File: f.display, Path: f.path, Project: f.layer == layerProject})
	}
	return out
}

// DefaultConfigDir is $XDG_CONFIG_HOME/hutch, or ~/.config/hutch.
func DefaultConfigDir(lookup func(string) (string, bool), home string) string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if d, ok := lookup("XDG_CONFIG_HOME"); ok && filepath.IsAbs(d) {
		return filepath.Join(d, "hutch")
	}
	return filepath.Join(home, ".config", "hutch")
}

// Discover finds the project's profile: hutch.toml or .hutch.toml in dir or
// its parents, stopping before home and before /. It returns "" when there
// is none.
func Discover(dir, home string) (string, error) {
	return discover(dir, []string{home})
}

// loader holds the state of one Load.
type loader struct {
	p       *Profile
	errs    errList
	applied map[string]bool
	layer   int
}

// userContext is a pseudo-file standing for your own configuration when
// resolving names (the base and --profile): user profiles shadow built-ins.
func userContext(p *Profile) *file {
	return &file{kind: FromUser, x: expander{lookup: p.lookup, home: p.home, project: p.projectDir, dir: p.cwd}}
}

// apply merges f into the profile after what it extends.
func (l *loader) apply(f *file, stack []*file) {
	if l.applied[f.id] {
		return
	}
	vals, refs := l.parse(f)
	stack = append(stack, f)
	for _, r := range refs {
		via := r.src
		t := l.resolveRef(r.name, f, &via)
		if t == nil {
			continue
		}
		if cyc := cycle(stack, t); cyc != "" {
			tip := "remove one of these extends"
			if t.kind == FromUser && t.name != "" && builtins[t.name] != nil && t.id == f.id {
				tip = fmt.Sprintf("to extend the built-in profile of the same name, write \"builtin:%s\"", t.name)
			}
			l.errs.add(r.src.errorAt("extends", "extends cycle: "+cyc, tip))
			continue
		}
		l.apply(t, stack)
	}
	l.applied[f.id] = true
	l.p.files = append(l.p.files, f)
	merge(l.p.settings, vals)
}

// cycle returns the chain "a → b → a" when t is on the stack.
func cycle(stack []*file, t *file) string {
	for i, s := range stack {
		if s.id == t.id {
			var names []string
			for _, x := range stack[i:] {
				names = append(names, x.label())
			}
			return strings.Join(append(names, t.label()), " → ")
		}
	}
	return ""
}

func (f *file) label() string {
	if f.kind == FromBuiltin {
		return "builtin:" + f.name
	}
	return f.display
}

// looksLikePath tells a path from a profile name in extends and --profile.
func looksLikePath(s string) bool {
	return strings.ContainsAny(s, "/$") || strings.HasSuffix(s, ".toml") || strings.HasPrefix(s, "~") || strings.HasPrefix(s, ".")
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// resolveRef finds the profile a name or path in extends (or --profile)
// refers to, from file from. via locates the reference for errors.
func (l *loader) resolveRef(ref string, from *file, via *Source) *file {
	fail := func(msg, tip string) *file {
		if via == nil {
			l.errs.add(&Error{Msg: msg, Tip: tip})
		} else if via.Kind == FromFlag {
			l.errs.add(&Error{Flag: via.Name, Msg: msg, Tip: tip})
		} else {
			l.errs.add(via.errorAt("extends", msg, tip))
		}
		return nil
	}
	var f *file
	switch name, isBuiltin := strings.CutPrefix(ref, "builtin:"); {
	case isBuiltin || from.kind == FromBuiltin:
		b := builtins[name]
		if b == nil {
			return fail(fmt.Sprintf("no built-in profile named %q", name), l.nameTip(name, true))
		}
		f = l.builtinFile(name)
	case looksLikePath(ref):
		abs, _, err := from.x.path(ref)
		if err != nil {
			return fail(err.Error(), errTip(err))
		}
		abs = resolve(abs)
		kind := from.kind
		if kind == FromBuiltin {
			kind = FromProject
		}
		if within(l.p.configDir, abs) {
			kind = FromUser
		}
		var rerr *Error
		f, rerr = l.readFile(abs, kind, "", false)
		if rerr != nil {
			tip := rerr.Tip
			if rerr.Msg == "no such file" {
				tip = "a path in extends is relative to the file that names it; names without a / are profiles (" + hintProfiles + ")"
			}
			return fail(fmt.Sprintf("%s: %s", rerr.File, rerr.Msg), tip)
		}
	default:
		if !validName(ref) {
			return fail(fmt.Sprintf("%q is neither a profile name (letters, digits, - and _) nor a path", ref),
				`write a path with a "/" in it, as in "./base.toml"`)
		}
		up := filepath.Join(l.p.configDir, "profiles", ref+".toml")
		uf, err := l.readFile(up, FromUser, ref, true)
		if err != nil {
			l.errs.add(err)
			return nil
		}
		if uf != nil {
			f = uf
			break
		}
		if builtins[ref] == nil {
			return fail(fmt.Sprintf("no profile named %q", ref), l.nameTip(ref, false))
		}
		f = l.builtinFile(ref)
	}
	if via != nil && via.Kind != FromFlag {
		v := *via
		f.via = &v
	}
	return f
}

// nameTip suggests a profile name.
func (l *loader) nameTip(name string, builtinOnly bool) string {
	names := append([]string(nil), builtinNames...)
	if !builtinOnly {
		names = append(names, userProfileNames(l.p.configDir)...)
	}
	if s := suggest(name, names); s != "" {
		return fmt.Sprintf("did you mean %q? (%s)", s, hintProfiles)
	}
	return fmt.Sprintf("built-in profiles: %s; yours live in %s (%s)",
		strings.Join(builtinNames, ", "), tilde(filepath.Join(l.p.configDir, "profiles"), l.p.home)+"/NAME.toml", hintProfiles)
}

func userProfileNames(configDir string) []string {
	ents, _ := os.ReadDir(filepath.Join(configDir, "profiles"))
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".toml"); ok && !e.IsDir() && validName(n) {
			out = append(out, n)
		}
	}
	return out
}

func (l *loader) builtinFile(name string) *file {
	return &file{id: "builtin:" + name, kind: FromBuiltin, name: name, data: builtins[name],
		display: "builtin:" + name, layer: l.layer,
		x: expander{lookup: l.p.lookup, home: l.p.home, project: l.p.projectDir, dir: l.p.projectDir}}
}

// readFile reads a profile from disk. With optional, a missing file is
// (nil, nil).
func (l *loader) readFile(path string, kind SourceKind, name string, optional bool) (*file, *Error) {
	disp := l.display(path)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && optional:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist) && name != "":
		return nil, &Error{File: disp, Msg: "no such file", Tip: hintProfiles}
	case errors.Is(err, fs.ErrNotExist):
		return nil, &Error{File: disp, Msg: "no such file", Tip: "check the path: a relative one is read from the current directory"}
	case err != nil:
		return nil, &Error{File: disp, Msg: unwrapPathErr(err)}
	case fi.IsDir():
		return nil, &Error{File: disp, Msg: "is a directory, not a profile", Tip: "name the .toml file itself"}
	case !fi.Mode().IsRegular():
		// A device or a FIFO could block or never end.
		return nil, &Error{File: disp, Msg: "is not a regular file"}
	}
	data, err := readSmall(path)
	if err != nil {
		return nil, &Error{File: disp, Msg: unwrapPathErr(err)}
	}
	if name == "" && kind == FromUser {
		if n, ok := strings.CutSuffix(filepath.Base(path), ".toml"); ok && filepath.Dir(path) == filepath.Join(l.p.configDir, "profiles") {
			name = n
		}
	}
	return &file{id: resolve(path), path: path, display: disp, kind: kind, name: name, data: data, layer: l.layer,
		x: expander{lookup: l.p.lookup, home: l.p.home, project: l.p.projectDir, dir: filepath.Dir(path)}}, nil
}

func unwrapPathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// display names a file the way the user would: relative to the working
// directory when beneath it or in one of its parents, "~/…" in the home,
// else absolute.
func (l *loader) display(path string) string {
	return displayPath(path, l.p.cwd, l.p.home)
}

func displayPath(path, cwd, home string) string {
	if path == "" {
		return ""
	}
	if rel, err := filepath.Rel(cwd, path); err == nil {
		if !strings.HasPrefix(rel, "..") {
			return rel
		}
		// A file in the parent or grandparent reads well as ../x; one
		// further up reads better as itself.
		if d := filepath.Dir(path); d != "/" && within(d, cwd) && strings.Count(rel, "..") <= 2 {
			return rel
		}
	}
	if home != "" && within(home, path) {
		return tilde(path, home)
	}
	return path
}

// resolve follows symlinks when it can.
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

func absFrom(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

var lookupEnv = os.LookupEnv

// readSmall reads a profile: a regular file of at most maxFileSize bytes
// (opened without blocking, so that a FIFO swapped in cannot hang hutch).
func readSmall(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes; a profile is a screenful", maxFileSize)}
	}
	return data, nil
}
