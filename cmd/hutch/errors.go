package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// Exit codes follow docker run's convention (docs/cli.md): 125 when hutch
// itself fails, 126 when the command cannot be executed, 127 when it is not
// found, otherwise the command's own status or 128+signal.
const (
	exitHutch    = 125
	exitUsage    = 2
	exitNotExec  = 126
	exitNotFound = 127
)

// usageError marks a mistake in how hutch was called, or in a profile:
// exit status 2, nothing launched. It may wrap an error that carries hints.
type usageError struct {
	msg string
	err error
}

func (e *usageError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.msg
}

func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// usageErr marks err as a usage error, keeping its hints.
func usageErr(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err: err}
}

// exitStatus carries a status to exit with when there is nothing to print,
// such as the sandboxed command's own status.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// hinter is implemented by errors that know what the user can do about them.
type hinter interface{ Hint() string }

// report prints err in the one format hutch uses and returns the exit code.
func report(stderr io.Writer, err error) int {
	code := statusOf(err)
	var st *exitStatus
	if err == nil || errors.As(err, &st) {
		return code
	}
	// Several errors (a profile's, or a Spec's) print one by one, each
	// with its own hint.
	for _, e := range leaves(err) {
		fmt.Fprintf(stderr, "hutch: error: %s\n", esc.Lines(e.Error()))
		for _, line := range hintLines(e) {
			fmt.Fprintf(stderr, "hutch: hint: %s\n", esc.Lines(line))
		}
	}
	return code
}

// statusOf is the status hutch exits with for err (docs/cli.md).
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	var st *exitStatus
	if errors.As(err, &st) {
		return st.code
	}
	code := exitHutch
	var ue *usageError
	if errors.As(err, &ue) {
		code = exitUsage
	}
	var ce *sandbox.CommandError
	if errors.As(err, &ce) {
		switch ce.Kind {
		case sandbox.CommandNotFound:
			code = exitNotFound
		case sandbox.CommandNotExecutable:
			code = exitNotExec
		}
	}
	return code
}

// hintLines are the hint's lines of one error, if it has one.
func hintLines(e error) []string {
	var h hinter
	if !errors.As(e, &h) {
		return nil
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(h.Hint()), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// leaves lists the errors joined in err (errors.Join, a profile's list),
// or err itself.
func leaves(err error) []error {
	var multi interface{ Unwrap() []error }
	if !errors.As(err, &multi) {
		return []error{err}
	}
	var out []error
	for _, e := range multi.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}
