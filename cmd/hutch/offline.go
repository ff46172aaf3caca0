package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/esc"
)

// registryProfiles maps a package registry's host to the built-in profile
// that lets its tool reach it.
var registryProfiles = map[string]string{
	"registry.npmjs.org":     "npm",
	"registry.yarnpkg.com":   "npm",
	"proxy.golang.org":       "go",
	"sum.golang.org":         "go",
	"pypi.org":               "pip",
	"files.pythonhosted.org": "pip",
	"index.crates.io":        "cargo",
	"static.crates.io":       "cargo",
}

// offlineHintNames is how many looked-up names the hint lists.
const offlineHintNames = 3

// reportOfflineLookups prints one hint line when a command failed after
// looking names up with the network off: with no DNS a tool fails (or,
// before hutch answered "no such host", retried for minutes) without
// saying that the sandbox is why. The names come from inside: escaped.
func reportOfflineLookups(w io.Writer, names []string, exitCode int) {
	if exitCode == 0 || len(names) == 0 {
		return
	}
	var list, allow []string
	profile := ""
	for i, n := range names {
		if p := registryProfiles[strings.ToLower(n)]; p != "" && profile == "" {
			profile = p
		}
		if i < offlineHintNames {
			list = append(list, esc.Text(n))
			allow = append(allow, "--allow "+shellWord(n))
		}
	}
	if len(names) > offlineHintNames {
		list = append(list, "…")
	}
	fix := "run with --network proxy " + strings.Join(allow, " ")
	if profile != "" {
		fix = "run with --profile " + profile + ", or --network proxy " + strings.Join(allow, " ")
	}
	fmt.Fprintf(w, "hutch: hint: the command looked up %s with the network off (network = \"none\"): %s\n",
		strings.Join(list, ", "), fix)
}

// shellWord is n as one word to paste into a shell: as it is when it is a
// plain host name, else quoted and escaped.
func shellWord(n string) string {
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == ':') {
			return esc.Quote(n)
		}
	}
	return n
}
