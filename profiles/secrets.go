package profiles

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// Profiles decide trust with the sandbox's own lists of secrets: a project
// profile that binds a secret, or passes a secret variable, asks for more
// than your configuration allows.
var secretPaths = sandbox.SecretPaths()

// secretEnv reports whether a variable's name says it holds a credential.
func secretEnv(name string) bool { return sandbox.SecretEnv(name) }

// isGlob reports whether an env.keep entry is a pattern rather than a name.
func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// secretAt returns the secret path (absolute) that p is, or lies within,
// given the home; "" when none. hides are further paths treated as secrets
// (your own filesystem.hide).
func secretAt(p, home string, hides []string) string {
	for _, rel := range secretPaths {
		s := filepath.Join(home, rel)
		if within(s, p) {
			return s
		}
	}
	for _, h := range hides {
		if within(h, p) {
			return h
		}
	}
	return ""
}

// hideTargets adds, for each hidden path that leads elsewhere through a
// symlink (~/.secrets -> /data/secrets, or an XDG_CONFIG_HOME behind a
// link), the place it leads to: a mask on the link itself masks nothing
// (the link resolves inside the sandbox), and its target may be visible
// through another bind.
func (p *Profile) hideTargets(hides []string) []string {
	have := map[string]bool{}
	for _, h := range hides {
		have[p.absHide(h)] = true
	}
	out := hides
	for _, h := range hides {
		abs := p.absHide(h)
		real, err := filepath.EvalSymlinks(abs)
		if err != nil || real == abs || have[real] {
			continue
		}
		have[real] = true
		out = append(out, tilde(real, p.home))
	}
	return out
}

func (p *Profile) absHide(h string) string {
	switch {
	case h == "~":
		return p.home
	case strings.HasPrefix(h, "~/"):
		return filepath.Join(p.home, h[2:])
	}
	return filepath.Clean(h)
}

// checkOwnState refuses a writable bind of hutch's configuration, where
// its trust records live, whoever asks: a command that could write there
// could approve any profile for the next run.
func (p *Profile) checkOwnState(errs *errList) {
	s := p.settings["filesystem.rw"]
	if s == nil {
		return
	}
	conf := resolve(p.configDir)
	for _, it := range s.items {
		real := resolve(it.Abs)
		if within(conf, real) || within(p.configDir, it.Abs) {
			errs.add(it.Src.errorAt("filesystem.rw", fmt.Sprintf("%s is hutch's own configuration, with its trust records; it is never writable inside a sandbox", it.Value),
				"edit it from outside, with hutch trust or your editor"))
		}
	}
}
