package main

import (
	"errors"

	"github.com/hutch-sandbox/hutch/sandbox/session"
)

// openSession opens the session name as seen from the working directory:
// its project's, or the only one of that name. A name several projects
// use, asked for from none of them, is a mistake in the call.
func openSession(name string) (*session.Session, error) {
	s, err := session.OpenSession(name)
	var amb *session.AmbiguousSessionError
	if errors.As(err, &amb) {
		return nil, usageErr(err)
	}
	return s, err
}
