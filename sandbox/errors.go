package sandbox

import (
	"fmt"

	"github.com/hutch-sandbox/hutch/internal/hint"
)

// HintError is an error with advice for the user, printed by the CLI as
// "hutch: hint: …" (internal/hint, shared with the session store).
type HintError = hint.Error

func withHint(err error, format string, args ...any) error { return hint.With(err, format, args...) }

// HelperDiedError says that a helper the sandbox depends on (its
// fuse-overlayfs, slirp4netns or pasta) died, and hutch stopped the
// sandbox rather than let the command run on without its files or its
// network. The CLI exits 125.
type HelperDiedError struct {
	Helper string
}

func (e *HelperDiedError) Error() string {
	return fmt.Sprintf("%s died while the command ran; hutch stopped the sandbox", e.Helper)
}

func (e *HelperDiedError) Hint() string {
	if e.Helper == "fuse-overlayfs" {
		return "the overlaid files were gone with it; a kept session keeps what was written until then (hutch diff NAME)"
	}
	return "the sandbox's network was gone with it; run again"
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
