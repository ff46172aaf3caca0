package sandbox

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps imports pointing one way (STYLE.md): cmd/hutch →
// profiles → sandbox → {userns, slirp, image}. The leaves know nothing of
// the packages that use them, and nothing below cmd imports the CLI.
func TestDeps(t *testing.T) {
	const mod = "github.com/hutch-sandbox/hutch/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := map[string][]string{
		"userns":   {"sandbox", "profiles", "cmd", "image", "slirp"},
		"slirp":    {"sandbox", "profiles", "cmd", "image", "userns"},
		"image":    {"sandbox", "profiles", "cmd", "slirp"},
		"sandbox":  {"profiles", "cmd", "doctor"},
		"doctor":   {"profiles", "cmd"},
		"profiles": {"cmd"},
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		top, _, _ := strings.Cut(pkg, "/")
		bad, ok := forbidden[top]
		if !ok || strings.HasPrefix(pkg, "internal") {
			continue
		}
		seen++
		for _, imp := range f[1:] {
			rel, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			impTop, _, _ := strings.Cut(rel, "/")
			for _, b := range bad {
				if impTop == b {
					t.Errorf("%s imports %s: imports point cmd → profiles → sandbox → {userns, slirp, image}", pkg, rel)
				}
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list found only %d of hutch's packages:\n%s", seen, out)
	}
}
