package profiles

import (
	"path"
	"path/filepath"
	"strings"
)

// secretPaths and secretEnvPatterns mirror the lists sandbox.NewPlan
// enforces (TestSecretsMatchSandbox checks that they agree). Profiles need
// them to decide trust: a project profile that binds a secret, or passes a
// secret variable, asks for more than your configuration allows.
var secretPaths = []string{
	".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker/config.json",
	".netrc", ".npmrc", ".pypirc", ".git-credentials", ".config/gh", ".config/hub",
	".local/share/keyrings", ".password-store", ".mozilla", ".config/google-chrome",
	".config/chromium", ".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials",
	".vault-token", ".terraform.d/credentials.tfrc.json", ".config/hutch",
}

var secretEnvPatterns = []string{"*_TOKEN", "*_SECRET", "*_SECRET_*", "*_PASSWORD", "*_PASSWD", "*_KEY", "*_API_KEY", "AWS_*", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "*_CREDENTIALS", "NPM_CONFIG__AUTH*"}

// secretEnv reports whether a variable's name says it holds a credential.
func secretEnv(name string) bool {
	for _, p := range secretEnvPatterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

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
