// Package paths holds the tests on clean absolute paths that the model and
// the session store both make. A leaf: pure string work, no syscalls.
package paths

import "strings"

// Within reports whether p is dir or beneath it. Both are clean and
// absolute.
func Within(dir, p string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// SystemDirs are the host's directories of programs and libraries, beneath
// /: a sandbox sees them read-only, and apply never writes into them.
var SystemDirs = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "opt", "nix", "gnu"}
