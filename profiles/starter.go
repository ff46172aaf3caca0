package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// detectors map files found in a project to the built-in profile for its
// tool.
var detectors = []struct {
	profile string
	files   []string
}{
	{"npm", []string{"package.json"}},
	{"pip", []string{"pyproject.toml", "requirements.txt", "setup.py", "setup.cfg", "Pipfile", "uv.lock", "poetry.lock"}},
	{"go", []string{"go.mod"}},
	{"cargo", []string{"Cargo.toml"}},
}

// Detection is a built-in profile chosen from a file in the project.
type Detection struct {
	Profile string
	File    string
}

// Detect looks at dir's files for the tools it uses.
func Detect(dir string) []Detection {
	var out []Detection
	for _, d := range detectors {
		for _, f := range d.files {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				out = append(out, Detection{d.profile, f})
				break
			}
		}
	}
	return out
}

// Starter writes a commented hutch.toml extending the given profiles:
// every key is listed, commented out, with what it does.
func Starter(extends []string, detected []Detection) string {
	var b strings.Builder
	b.WriteString(`# hutch.toml: the sandbox that hutch run and hutch shell use in this project.
#
# hutch applies its built-in "default" profile (host system read-only, this
# project read-write, an empty home, secrets hidden, no network), then your
# own ~/.config/hutch/config.toml, then this file, then command-line flags.
# Every key is below, commented out; uncomment one to change it.
# "hutch profile show" prints what is in effect and where each value came
# from; docs/profiles.md describes every key.
#
# This file may narrow anything. What widens your own configuration
# (writable paths outside the project, the network, ...) needs your
# approval: run "hutch trust" after editing it.
`)
	if len(detected) > 0 {
		var ds []string
		for _, d := range detected {
			ds = append(ds, fmt.Sprintf("%s (%s)", d.File, d.Profile))
		}
		fmt.Fprintf(&b, "#\n# Detected: %s.\n", strings.Join(ds, ", "))
	}
	b.WriteString("\n")
	if len(extends) > 0 {
		q := make([]string, len(extends))
		for i, e := range extends {
			q[i] = fmt.Sprintf("%q", e)
		}
		fmt.Fprintf(&b, "extends = [%s]\n", strings.Join(q, ", "))
	} else {
		fmt.Fprintf(&b, "# Built-in profiles to start from: %s.\n# extends = [\"npm\"]\n", strings.Join(builtinNames, ", "))
	}
	section := ""
	for _, k := range schema {
		if k.FlagOnly {
			continue
		}
		sec, _, _ := strings.Cut(k.Key, ".")
		if sec != section {
			fmt.Fprintf(&b, "\n[%s]\n", sec)
			section = sec
		} else {
			b.WriteString("\n")
		}
		doc := strings.ToUpper(k.Doc[:1]) + k.Doc[1:] + ". Default: " + k.Default + "."
		for _, l := range wrap(doc, 74) {
			b.WriteString("# " + l + "\n")
		}
		b.WriteString("#" + k.Example + "\n")
	}
	return b.String()
}

// wrap breaks s into lines of at most width.
func wrap(s string, width int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			out = append(out, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}
