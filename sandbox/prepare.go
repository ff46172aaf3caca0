package sandbox

import (
	"fmt"
	"strings"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// Prepared is a run's plan, resolved, with the host facts it was made
// from. Close releases what the run holds until it ends (an image root,
// which prune then leaves alone).
type Prepared struct {
	Plan *Plan
	Host *Host
	root *image.Root
	// svcRoots are the services' image roots, held as root is.
	svcRoots []*image.Root
}

// Close releases the image roots, if any.
func (p *Prepared) Close() {
	if p.root != nil {
		p.root.Close()
	}
	for _, r := range p.svcRoots {
		r.Close()
	}
}

// OpenImage opens the image ref (as filesystem.root = "image:REF" takes
// it) for the spec's key that names it: "filesystem.root", or a service's
// "services.NAME.image". The CLI's knows the store and the pull policy.
type OpenImage func(host *Host, key, ref string) (*image.Root, error)

// Prepare is a run's planning as one call, in the order it must happen:
// probe the host; open the spec's image root, when it names one, through
// openImage (the CLI's: it knows the store and the pull policy); probe
// what git and the dotfiles need of the host; build the plan (pure); and
// resolve it (the seccomp program, the allowlist), so that a dry run
// checks everything a run would use.
func Prepare(spec Spec, openImage OpenImage) (*Prepared, error) {
	host, err := ProbeHost()
	if err != nil {
		return nil, err
	}
	p := &Prepared{Host: host}
	if ImageRef(spec) != "" {
		if p.root, err = openImage(host, "filesystem.root", ImageRef(spec)); err != nil {
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
	if err := p.openServiceImages(spec, host, openImage); err != nil {
		p.Close()
		return nil, err
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

// openServiceImages opens the image of each service that names one, and
// holds it for the run as the command's: prune leaves its layers alone.
// A service runs with the command's ids, so the image's configured user
// serves only its environment (HOME, USER).
func (p *Prepared) openServiceImages(spec Spec, host *Host, openImage OpenImage) error {
	for _, sv := range spec.Services {
		if sv.Image == "" {
			continue
		}
		if openImage == nil {
			return &FieldError{Key: ServiceKey(sv.Name, "image"), Msg: "an image of a service's own cannot be opened here"}
		}
		r, err := openImage(host, ServiceKey(sv.Name, "image"), strings.TrimSpace(sv.Image))
		if err != nil {
			return fmt.Errorf("service %q: %w", sv.Name, err)
		}
		if mutate.Off("service-image-hold") {
			r.Close() // the bug: prune may free the layers mid-run
		} else {
			p.svcRoots = append(p.svcRoots, r)
		}
		img, err := NewImageRoot(r, UserSelf)
		if err != nil {
			return fmt.Errorf("service %q: %w", sv.Name, err)
		}
		if host.ServiceImages == nil {
			host.ServiceImages = map[string]*ImageRoot{}
		}
		host.ServiceImages[sv.Name] = img
	}
	return nil
}
