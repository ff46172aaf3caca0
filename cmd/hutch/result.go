package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/result"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// ciFlags are hutch run's flags for machines: --result (docs/result.md)
// and --script, the file a CI runner's shell template names with {0}
// (docs/ci.md).
func ciFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "result", Usage: "write how the run ended to `FILE` as JSON, whatever the outcome (docs/result.md)"},
		&cli.StringFlag{Name: "script", Usage: "bind `FILE` read-only and append it to the command (a CI runner's {0}: hutch run --script {0} -- bash -e)"},
	}
}

// withResult runs fn and, with --result FILE, writes how it ended there.
// The file's directory is opened before fn runs (result.Open): nothing
// the command does can move the document elsewhere.
func withResult(c *cli.Context, fn func() (*supervise.Result, error)) error {
	path := c.String("result")
	if path == "" {
		_, err := fn()
		return err
	}
	w, err := result.Open("--result", path, preservedFDs(c))
	if err != nil {
		return usageErr(err)
	}
	defer w.Close()
	res, err := fn()
	werr := w.Write(result.New(Version, res, statusOf(err), resultError(err)))
	if werr == nil {
		return err
	}
	if err == nil {
		return werr
	}
	// The run's own error decides the exit status; say this one too.
	fmt.Fprintf(c.App.ErrWriter, "hutch: error: %s\n", esc.Lines(werr.Error()))
	return err
}

// resultError is hutch's own error as --result records it: what report
// prints, by kind. The command's own status is no error of hutch's.
func resultError(err error) *result.Error {
	var st *exitStatus
	if err == nil || errors.As(err, &st) {
		return nil
	}
	kind := result.KindHutch
	var ue *usageError
	var ce *sandbox.CommandError
	var hd *sandbox.HelperDiedError
	switch {
	case errors.As(err, &ce) && ce.Kind == sandbox.CommandNotFound:
		kind = result.KindNotFound
	case errors.As(err, &ce) && ce.Kind == sandbox.CommandNotExecutable:
		kind = result.KindNotExecutable
	case errors.As(err, &ue):
		kind = result.KindUsage
	case errors.As(err, &hd):
		kind = result.KindHelperDied
	}
	var msgs, hints []string
	for _, e := range leaves(err) {
		msgs = append(msgs, e.Error())
		hints = append(hints, hintLines(e)...)
	}
	return &result.Error{Kind: kind, Message: strings.Join(msgs, "\n"), Hint: strings.Join(hints, "\n")}
}

// preservedFDs is the last fd --preserve-fds passes into the sandbox:
// hutch's own descriptors must be numbered above it.
func preservedFDs(c *cli.Context) int {
	return 2 + max(c.Int("preserve-fds"), 0)
}

// scriptArg is --script's file as an absolute path, or "" without it.
func scriptArg(c *cli.Context) (string, error) {
	s := c.String("script")
	if s == "" {
		return "", nil
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", usagef("--script %q: %v", s, err)
	}
	return abs, nil
}
