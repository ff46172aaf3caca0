package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// learnTarget is where a learn run (network.learn, --learn FILE) writes
// its profile: the file's directory, opened before the run (so that a
// sandbox that swaps a directory of the path for a symlink during the run
// moves nothing), and the file's name in it.
type learnTarget struct {
	dir       *os.Root
	path      string // absolute, for mutate's naive write only
	name      string
	display   string
	overwrite bool
}

// openLearnTarget checks FILE before anything runs: its directory exists,
// and the file does not, unless --learn-overwrite says to replace it.
func openLearnTarget(c *cli.Context, file string) (*learnTarget, error) {
	if file == "" {
		return nil, nil
	}
	path := file
	if rest, ok := strings.CutPrefix(file, "~/"); ok {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, rest)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(path)
	if name == "" || name == "." || name == ".." {
		return nil, usagef("--learn %s: name a file to write the learned profile to", esc.Quote(file))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, usagef("--learn %s: %v", esc.Quote(file), unwrapPath(err))
	}
	t := &learnTarget{dir: root, path: path, name: name, display: file, overwrite: c.Bool("learn-overwrite")}
	if _, err := root.Lstat(name); err == nil && !t.overwrite {
		root.Close()
		return nil, usageErr(hint.With(fmt.Errorf("--learn %s: the file exists", esc.Quote(file)),
			"hutch keeps it: name another file, or replace it with --learn-overwrite"))
	}
	return t, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// write writes the learned profile atomically: a temporary file in the
// same directory, then a hard link to the name (which fails if a file
// appeared there meanwhile, the sandbox's included) or, with
// --learn-overwrite, a rename over it.
func (t *learnTarget) write(learned *supervise.Learned, hostLoopback bool, exitCode int) error {
	defer t.dir.Close()
	var uses []proxy.Use
	dropped := 0
	if learned != nil {
		uses, dropped = learned.Uses, learned.Dropped
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Learned by hutch run --learn on %s: every host the command reached.\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("# Review it before you use it: the learn run let the command reach any host,\n")
	b.WriteString("# so this list is only as good as the command you trusted to run once.\n")
	if exitCode != 0 {
		fmt.Fprintf(&b, "# The command exited with status %d.\n", exitCode)
	}
	b.WriteString("# Use it: hutch trust FILE, then hutch run --profile FILE -- CMD;\n")
	b.WriteString("# or copy its [network] section into your hutch.toml.\n")
	b.WriteString(proxy.LearnedProfile(uses, dropped, hostLoopback))

	if mutate.Off("learn-link") { // the naive write, which follows a planted link
		return os.WriteFile(t.path, []byte(b.String()), 0o644)
	}
	tmp := fmt.Sprintf(".%s.hutch-%d", t.name, os.Getpid())
	f, err := t.dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", t.display, unwrapPath(err))
	}
	defer t.dir.Remove(tmp)
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", t.display, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", t.display, err)
	}
	if t.overwrite {
		err = t.dir.Rename(tmp, t.name)
	} else {
		err = t.dir.Link(tmp, t.name)
	}
	if errors.Is(err, fs.ErrExist) {
		return hint.With(fmt.Errorf("writing %s: the file appeared during the run", esc.Quote(t.display)),
			"hutch keeps it; the learned profile was not written: run again with another file, or --learn-overwrite")
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", t.display, unwrapPath(err))
	}
	return nil
}
