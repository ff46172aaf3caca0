package sandbox

// HomeWrites is what the command left in a temporary home (home =
// "tmpfs"), which goes with the sandbox: go install's binaries, npm -g's
// packages, the logs whose paths a tool printed. The CLI says so at exit.
type HomeWrites struct {
	// Count is the files (and symlinks) written there; Paths the first
	// few, relative to home. More: the walk stopped at its bound.
	Count int      `json:"count"`
	Paths []string `json:"paths,omitempty"`
	More  bool     `json:"more,omitempty"`
}
