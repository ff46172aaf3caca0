package profiles

import (
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
