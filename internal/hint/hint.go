// Package hint is an error with advice for the user: the CLI prints its
// Err as "hutch: error: …" and its Tip as "hutch: hint: …". A leaf, so
// that every package that words a fix (the model, the session store, both
// sides of a run) can return one.
package hint

import "fmt"

// Error is an error with advice for the user.
type Error struct {
	Err error
	Tip string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
func (e *Error) Hint() string  { return e.Tip }

// With wraps err with a tip; nil stays nil.
func With(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Tip: fmt.Sprintf(format, args...)}
}
