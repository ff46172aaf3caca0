package oci

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/ocispec"
)

// siteSpec is the policy a bundle runs under: with --profile SITE.toml
// (the administrator's, named in oci.conf), hutch's built-in default and
// that file alone, never the caller's own configuration, which could
// otherwise widen what the site profile leaves unsaid; without it, the
// caller's configuration as hutch run reads it. Never a project's
// hutch.toml.
func siteSpec(site string) (sandbox.Spec, error) {
	// A bundle has no project: planning from home, which is never one,
	// keeps the engine's working directory out of it.
	opts := profiles.Options{NoProject: true, Dir: os.Getenv("HOME")}
	if site != "" {
		abs, err := filepath.Abs(site)
		if err != nil {
			return sandbox.Spec{}, err
		}
		// The administrator named it: that is its approval.
		opts.Profile, opts.Trust = abs, true
		opts.ConfigDir = filepath.Join(filepath.Dir(abs), ".hutch-oci-no-user-config")
	}
	p, err := profiles.Load(opts)
	if err != nil {
		return sandbox.Spec{}, err
	}
	return p.Spec(sandbox.Spec{})
}

// applyBundle lays the bundle's request over the site's policy. What
// decides the sandbox's reach stays the site's: network mode and
// allowlist, published ports, hidden paths, seccomp, nesting; a limit is
// the tighter of the two. The bundle brings its root, command, ids,
// mounts (checked again by the planner: nothing hidden may be bound in)
// and environment. warn names what is narrowed.
func applyBundle(b *ocispec.Bundle, site sandbox.Spec, tty string, warn func(string)) sandbox.Spec {
	s := site
	req := b.Spec
	s.Args = req.Args
	s.TTY = tty
	s.Bundle = req.Bundle
	s.Filesystem.Root = req.Filesystem.Root
	s.Filesystem.Project = ""
	s.Filesystem.Binds = append(append([]sandbox.Bind(nil), site.Filesystem.Binds...), req.Filesystem.Binds...)
	s.Filesystem.Tmpfs = append(append([]string(nil), site.Filesystem.Tmpfs...), req.Filesystem.Tmpfs...)
	s.Filesystem.Hide = append(append([]string(nil), site.Filesystem.Hide...), req.Filesystem.Hide...)
	if req.Process.Hostname != "" {
		s.Process.Hostname = req.Process.Hostname
	}
	s.Process.Workdir = req.Process.Workdir
	s.Process.User = ""
	s.Process.Shell, s.Process.Dotfiles = nil, nil
	if b.HostNetwork && s.Network.Mode != sandbox.NetworkHost {
		warn(fmt.Sprintf("the bundle asks for the host's network (no network namespace); the profile's network mode %q applies", s.Network.Mode))
	}
	l := &s.Limits
	l.NoFile = tighter(l.NoFile, req.Limits.NoFile)
	l.NProc = tighter(l.NProc, req.Limits.NProc)
	l.FSize = tighter(l.FSize, req.Limits.FSize)
	l.Memory = tighter(l.Memory, b.Memory)
	l.Pids = tighter(l.Pids, b.Pids)
	if b.CPU > 0 && (l.CPU == 0 || b.CPU < l.CPU) {
		l.CPU = b.CPU
	}
	if len(b.Seccomp) > 0 {
		// On top of the profile's filter, never instead of it.
		bs := *s.Bundle
		bs.Seccomp = b.Seccomp
		s.Bundle = &bs
	}
	return s
}

// tighter is the smaller of two limits, 0 being none.
func tighter(a, b int64) int64 {
	if a == 0 || b > 0 && b < a {
		return b
	}
	return a
}
