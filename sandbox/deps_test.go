package sandbox

import (
	"os/exec"
	"strings"
	"testing"
)

// depRules keep imports pointing one way (STYLE.md, docs/internals.md):
// cmd/hutch → profiles, doctor → sandbox (the model) → the session store
// and the leaves. A pattern "p" names one package, "p/..." it and every
// package beneath it; each rule lists what the packages it names must
// never import.
var depRules = []struct {
	pkgs, forbidden []string
}{
	// The leaves know nothing of the packages that use them.
	{[]string{"userns/..."}, []string{"sandbox/...", "profiles/...", "cmd/...", "image/...", "slirp/...", "doctor/..."}},
	{[]string{"slirp/..."}, []string{"sandbox/...", "profiles/...", "cmd/...", "image/...", "userns/...", "doctor/..."}},
	{[]string{"image/..."}, []string{"sandbox/...", "profiles/...", "cmd/...", "slirp/...", "doctor/..."}},
	{[]string{"sandbox/layers/...", "sandbox/seccomp/..."}, []string{"sandbox", "sandbox/session/...", "profiles/...", "cmd/...", "doctor/..."}},
	{[]string{"internal/..."}, []string{"sandbox/...", "profiles/...", "cmd/...", "doctor/...", "image/...", "slirp/...", "userns/..."}},
	// The session store sits below the model: the run side uses it.
	{[]string{"sandbox/session/..."}, []string{"sandbox", "profiles/...", "cmd/...", "doctor/..."}},
	// Nothing below the CLI imports the CLI, the input format or the doctor.
	{[]string{"sandbox/..."}, []string{"profiles/...", "cmd/...", "doctor/..."}},
	{[]string{"doctor/..."}, []string{"profiles/...", "cmd/..."}},
	{[]string{"profiles/..."}, []string{"cmd/...", "doctor/..."}},
}

// matches reports whether pkg (relative to the module) is named by pattern.
func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// TestDeps checks every package of the module against depRules. The
// internal testing helpers (internal/testimage, internal/testenv) build
// images and environments for tests and may import what they test.
func TestDeps(t *testing.T) {
	const mod = "github.com/hutch-sandbox/hutch/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		if strings.HasPrefix(pkg, "internal/test") {
			continue
		}
		for _, r := range depRules {
			named := false
			for _, p := range r.pkgs {
				named = named || matches(p, pkg)
			}
			if !named {
				continue
			}
			seen++
			for _, imp := range f[1:] {
				rel, ok := strings.CutPrefix(imp, mod)
				if !ok {
					continue
				}
				for _, b := range r.forbidden {
					if matches(b, rel) {
						t.Errorf("%s imports %s (forbidden by the rule on %s)", pkg, rel, strings.Join(r.pkgs, ", "))
					}
				}
			}
		}
	}
	if seen < 12 {
		t.Fatalf("go list found only %d of hutch's packages:\n%s", seen, out)
	}
}
