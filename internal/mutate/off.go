//go:build !hutch_mutate

package mutate

// Off is always false in a normal build.
func Off(name string) bool { return false }

// Env is empty in a normal build.
func Env() []string { return nil }
