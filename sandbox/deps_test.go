package sandbox

import (
	"os/exec"
	"strings"
	"testing"
)

// depRules keep imports pointing one way (STYLE.md, docs/internals.md):
// cmd/hutch → profiles, doctor → {supervise, pid1} → wire → sandbox (the
// model) → the session store and the leaves. A pattern "p" names one package, "p/..." it and every
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
	// The supervisor side and the PID 1 side never import each other; both
	// import only the model, the wire package and leaves (the supervisor
	// also the session store, whose sessions it opens and records).
	{[]string{"sandbox/supervise/..."}, []string{"sandbox/pid1/...", "profiles/...", "cmd/...", "doctor/..."}},
	{[]string{"sandbox/pid1/..."}, []string{"sandbox/supervise/...", "sandbox/session/...", "profiles/...", "cmd/...", "doctor/..."}},
	// The wire package is what both sides share: it knows the plan's
	// types only (sandbox/model), not the package that builds plans, so
	// that hutch-init links none of its dependencies.
	{[]string{"sandbox/wire/..."}, []string{"sandbox", "sandbox/supervise/...", "sandbox/pid1/...", "sandbox/session/...", "profiles/...", "cmd/...", "doctor/..."}},
	// The plan's types are a leaf: hutch-init's binary links them.
	{[]string{"sandbox/model/..."}, []string{"sandbox", "sandbox/supervise/...", "sandbox/pid1/...", "sandbox/wire/...", "sandbox/session/...", "sandbox/layers/...", "image/...", "slirp/proxy/...", "slirp/dns/...", "profiles/...", "cmd/...", "doctor/..."}},
	// The model is pure: it never reaches for either side of a run.
	{[]string{"sandbox"}, []string{"sandbox/supervise/...", "sandbox/pid1/...", "sandbox/wire/..."}},
	// The session store sits below the model: the run side uses it.
	{[]string{"sandbox/session/..."}, []string{"sandbox", "profiles/...", "cmd/...", "doctor/..."}},
	// Nothing below the CLI imports the CLI, the input format or the doctor.
	{[]string{"sandbox/..."}, []string{"profiles/...", "cmd/...", "doctor/..."}},
	{[]string{"doctor/..."}, []string{"profiles/...", "cmd/..."}},
	// The --result document reads a run's outcome; it knows no CLI.
	{[]string{"result/..."}, []string{"profiles/...", "cmd/...", "doctor/...", "sandbox/pid1/..."}},
	{[]string{"profiles/..."}, []string{"cmd/...", "doctor/..."}},
	// hutch oci is a CLI's library: the input format and the supervisor
	// side, never the PID 1 side or the CLI itself.
	{[]string{"oci/..."}, []string{"cmd/...", "doctor/...", "sandbox/pid1/..."}},
}

// sideImports is all that either side of a run may import of hutch: the
// model, the wire package and the leaves; the supervisor also the session
// store. The PID 1 side takes the plan's types from sandbox/model, never
// sandbox itself, and none of the leaves that serve the network or pull
// images: it is a binary of its own (cmd/hutch-init). TestDeps checks it
// as an allowlist.
var sideImports = map[string][]string{
	"sandbox/supervise": {"sandbox", "sandbox/wire", "sandbox/session", "sandbox/seccomp", "sandbox/layers", "userns", "slirp/...", "image/...", "internal/..."},
	"sandbox/pid1":      {"sandbox/model", "sandbox/wire", "sandbox/seccomp", "sandbox/layers", "userns", "slirp/allow", "slirp/redirect", "internal/..."},
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
		if allowed, ok := sideImports[pkg]; ok {
			for _, imp := range f[1:] {
				rel, ok := strings.CutPrefix(imp, mod)
				if !ok {
					continue
				}
				ok = false
				for _, a := range allowed {
					ok = ok || matches(a, rel)
				}
				if !ok {
					t.Errorf("%s imports %s: a side of a run imports only %s", pkg, rel, strings.Join(allowed, ", "))
				}
			}
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
	if seen < 15 {
		t.Fatalf("go list found only %d of hutch's packages:\n%s", seen, out)
	}
}
