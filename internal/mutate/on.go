//go:build hutch_mutate

package mutate

import "os"

// current is read once, at start-up, before anything clears the
// environment.
var current = os.Getenv(Var)

// Off reports whether HUTCH_MUTATE names this defence.
func Off(name string) bool { return current != "" && current == name }

// Env passes the mutation on to a child started with a cleared
// environment.
func Env() []string {
	if current == "" {
		return nil
	}
	return []string{Var + "=" + current}
}
