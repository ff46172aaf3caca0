package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Load reads the profiles that apply: the built-in default, your own
// configuration, and the project's profile (or opts.Profile). Syntax,
// unknown keys, types, values and extends are checked here; paths and
// trust when Spec is called.
func Load(opts Options) (*Profile, error) {
	p, err := newProfile(opts)
	if err != nil {
		return nil, err
	}
	l := &loader{p: p, applied: map[string]bool{}}
	if err := l.findProject(opts); err != nil {
		return nil, err
	}
	l.loadBase()
	l.loadProject(opts)
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	p.settleTrust(opts)
	return p, nil
}

// newProfile starts a profile from where hutch runs: the home, the config
// directory and the working directory, each resolved.
func newProfile(opts Options) (*Profile, error) {
	p := &Profile{lookup: opts.LookupEnv, settings: map[string]*setting{}}
	if p.lookup == nil {
		p.lookup = os.LookupEnv
	}
	p.home = opts.Home
	if p.home == "" {
		p.home, _ = p.lookup("HOME")
	}
	if p.home == "" {
		return nil, &Error{Msg: "HOME is not set", Tip: "set HOME to your home directory"}
	}
	p.home = filepath.Clean(p.home)
	p.realHome = resolve(p.home)
	p.configDir = opts.ConfigDir
	if p.configDir == "" {
		p.configDir = DefaultConfigDir(p.lookup, p.home)
	}
	p.cwd = opts.Dir
	if p.cwd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("reading the working directory: %w", err)
		}
		p.cwd = wd
	}
	if !filepath.IsAbs(p.cwd) {
		if abs, err := filepath.Abs(p.cwd); err == nil {
			p.cwd = abs
		}
	}
	p.cwd = resolve(p.cwd)
	return p, nil
}

// findProject finds the project directory and its profile: where
// hutch.toml is, else --project, else the working directory.
func (l *loader) findProject(opts Options) error {
	p := l.p
	p.projectDir = p.cwd
	if opts.ProjectDir != "" {
		p.projectDir = resolve(absFrom(p.cwd, opts.ProjectDir))
	}
	switch {
	case opts.ProjectFile != "":
		named := absFrom(p.cwd, opts.ProjectFile)
		if fi, err := os.Stat(named); err == nil && fi.IsDir() {
			named = filepath.Join(named, projectFileNames[0])
		}
		if fi, err := os.Lstat(named); err == nil {
			if e := projectFileError(named, fi); e != nil {
				e.File = l.display(e.File)
				return e
			}
		}
		p.projectFile = canonicalProjectFile(p.cwd, opts.ProjectFile)
		p.projectFound = true
	case !opts.NoProject:
		trees, temps := p.placeRoots()
		found, err := discover(p.projectDir, append(append([]string{p.realHome, p.home}, trees...), temps...))
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.File = l.display(e.File)
			}
			return err
		}
		if found != "" {
			found = resolve(found)
			p.projectFound = true
		}
		p.projectFile = found
	}
	if p.projectFile != "" {
		p.projectDir = resolve(filepath.Dir(p.projectFile))
	}
	return nil
}

// loadBase applies the base layer: the built-in default, then your
// configuration; what it sets is what the trust check compares against.
func (l *loader) loadBase() {
	p := l.p
	l.layer = layerBase
	user := userContext(p)
	if f := l.resolveRef("default", user, nil); f != nil {
		l.apply(f, nil)
	}
	if f, err := l.readFile(filepath.Join(p.configDir, "config.toml"), FromUser, "", true); err != nil {
		l.errs.add(err)
	} else if f != nil {
		l.apply(f, nil)
	}
	p.base = cloneSettings(p.settings)
}

// loadProject applies the project layer: --profile, or the project's file.
func (l *loader) loadProject(opts Options) {
	p := l.p
	l.layer = layerProject
	switch {
	case opts.Profile != "" && opts.ProjectFile == "":
		ref := &Source{Kind: FromFlag, Name: "--profile"}
		ctx := userContext(p)
		ctx.kind = FromProject
		if f := l.resolveRef(opts.Profile, ctx, ref); f != nil {
			// A name is your choice of a built-in or your own profile; a
			// path outside your config directory is a file like hutch.toml.
			p.chosen = !looksLikePath(opts.Profile)
			p.projectFile = ""
			if f.kind == FromProject {
				p.projectFile = f.path
			}
			l.apply(f, nil)
		}
	case p.projectFile != "":
		f, err := l.readFile(p.projectFile, FromProject, "", false)
		if err != nil {
			l.errs.add(err)
		} else {
			l.apply(f, nil)
		}
	}
}

// settleTrust lists what the project's files widen and whether they are
// trusted to.
func (p *Profile) settleTrust(opts Options) {
	// Trust covers the project's own files: the profile first (its path
	// keys the record), then what it extends by path.
	for _, f := range p.files {
		if f.layer == layerProject && f.kind == FromProject && f.path == p.projectFile {
			p.trustFiles = append(p.trustFiles, f)
		}
	}
	for _, f := range p.files {
		if f.layer == layerProject && f.kind == FromProject && f.path != p.projectFile {
			p.trustFiles = append(p.trustFiles, f)
		}
	}
	p.asks = append(p.widenings(), p.placeAsks()...)
	p.trust = TrustNotNeeded
	if len(p.asks) > 0 && len(p.trustFiles) > 0 {
		switch {
		case opts.Trust:
			p.trust = TrustedByFlag
		default:
			p.trust = checkTrust(p.configDir, p.trustFiles)
		}
	}
}
