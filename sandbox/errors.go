package sandbox

import (
	"fmt"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/sandbox/model"
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

// The command's start errors live in sandbox/model, as the plan does.
type (
	CommandErrorKind = model.CommandErrorKind
	CommandError     = model.CommandError
)

const (
	CommandNotFound      = model.CommandNotFound
	CommandNotExecutable = model.CommandNotExecutable
)
