package sandbox

import "fmt"

// HintError is an error with advice for the user, printed by the CLI as
// "hutch: hint: …".
type HintError struct {
	Err error
	Tip string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }
func (e *HintError) Hint() string  { return e.Tip }

func withHint(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &HintError{Err: err, Tip: fmt.Sprintf(format, args...)}
}

// CommandErrorKind says why the command could not be started.
type CommandErrorKind int

const (
	CommandNotFound CommandErrorKind = iota + 1
	CommandNotExecutable
)

// CommandError reports that the sandbox was built but the command could not
// be started in it; the CLI maps it to exit status 127 or 126.
type CommandError struct {
	Kind CommandErrorKind
	Name string
	Msg  string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%q: %s", e.Name, e.Msg)
}
