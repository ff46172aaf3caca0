package sandbox

import "path/filepath"

// InitName is the fixed argv[0] of the hidden child entry.
const InitName = "hutch-init"

// IsInit reports whether argv0 names the hidden child entry.
func IsInit(argv0 string) bool { return filepath.Base(argv0) == InitName }

// InitMain is replaced by the real init.
func InitMain() int { return 125 }
