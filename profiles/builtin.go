package profiles

import (
	"embed"
	"strings"
)

//go:embed builtin/*.toml
var builtinFS embed.FS

// builtinNames are the built-in profiles, in the order `hutch profile list`
// shows them.
var builtinNames = []string{"default", "strict", "npm", "pip", "go", "cargo", "ci"}

var builtins = func() map[string][]byte {
	m := map[string][]byte{}
	for _, n := range builtinNames {
		data, err := builtinFS.ReadFile("builtin/" + n + ".toml")
		if err != nil {
			panic(err)
		}
		m[n] = data
	}
	return m
}()

// Builtin returns the text of a built-in profile.
func Builtin(name string) ([]byte, bool) {
	b, ok := builtins[name]
	return b, ok
}

// description is the first comment line of a profile.
func description(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if d, ok := strings.CutPrefix(line, "#"); ok {
			return strings.TrimSpace(d)
		}
		return ""
	}
	return ""
}
