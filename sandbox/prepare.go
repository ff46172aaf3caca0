package sandbox

import "github.com/hutch-sandbox/hutch/image"

// Prepared is a run's plan, resolved, with the host facts it was made
// from. Close releases what the run holds until it ends (an image root,
// which prune then leaves alone).
type Prepared struct {
	Plan *Plan
	Host *Host
	root *image.Root
}

// Close releases the image root, if any.
func (p *Prepared) Close() {
	if p.root != nil {
		p.root.Close()
	}
}

// Prepare is a run's planning as one call, in the order it must happen:
// probe the host; open the spec's image root, when it names one, through
// openImage (the CLI's: it knows the store and the pull policy); probe
// what git and the dotfiles need of the host; build the plan (pure); and
// resolve it (the seccomp program, the allowlist), so that a dry run
// checks everything a run would use.
func Prepare(spec Spec, openImage func(*Host) (*image.Root, error)) (*Prepared, error) {
	host, err := ProbeHost()
	if err != nil {
		return nil, err
	}
	p := &Prepared{Host: host}
	if ImageRef(spec) != "" {
		if p.root, err = openImage(host); err != nil {
			return nil, err
		}
		if host.Image, err = NewImageRoot(p.root, spec.Process.User); err != nil {
			p.Close()
			return nil, err
		}
	}
	if DirRoot(spec) != "" {
		if host.Image, err = NewDirRoot(spec); err != nil {
			return nil, err
		}
	}
	// The root directory's real path too: checkBundleRoot checks both.
	host.BindReal = probeBinds(append(spec.Filesystem.Binds[:len(spec.Filesystem.Binds):len(spec.Filesystem.Binds)], Bind{Source: DirRoot(spec)}))
	host.Git = ProbeGit(ProjectDir(spec, host), host.Home)
	host.Dotfiles = ProbeDotfiles(host, Dotfiles(spec))
	if p.Plan, err = NewPlan(spec, host); err == nil {
		err = Resolve(p.Plan)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}
