package main

import (
	"errors"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// openSession opens the session name as seen from the working directory:
// its project's, or the only one of that name. A name several projects
// use, asked for from none of them, is a mistake in the call.
func openSession(name string) (*sandbox.Session, error) {
	s, err := sandbox.OpenSession(name)
	var amb *sandbox.AmbiguousSessionError
	if errors.As(err, &amb) {
		return nil, usageErr(err)
	}
	return s, err
}
