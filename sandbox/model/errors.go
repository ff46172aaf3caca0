package model

import "fmt"

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
