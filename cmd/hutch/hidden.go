package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// toolRoots are where tools installed in a home live, and what to bind so
// that they run: a version manager's bin holds links into its own tree, so
// its whole root is named.
var toolRoots = []struct{ bin, root string }{
	{".local/bin", ".local/bin"},
	{"bin", "bin"},
	{"go/bin", "go/bin"},
	{".cargo/bin", ".cargo/bin"},
	{".nvm/versions/node/*/bin", ".nvm"},
	{".local/share/fnm/node-versions/*/installation/bin", ".local/share/fnm"},
	{".pyenv/shims", ".pyenv"},
	{".pyenv/bin", ".pyenv"},
	{".volta/bin", ".volta"},
	{".deno/bin", ".deno"},
	{".bun/bin", ".bun"},
	{".rustup/toolchains/*/bin", ".rustup"},
}

// hiddenToolHint adds a hint to a "command not found" whose command exists
// in your home on the host, which the sandbox does not show: the most
// common "it works outside" surprise.
func hiddenToolHint(err error, home string) error {
	var ce *sandbox.CommandError
	if !errors.As(err, &ce) || ce.Kind != sandbox.CommandNotFound || strings.Contains(ce.Name, "/") || home == "" {
		return err
	}
	for _, t := range toolRoots {
		dirs, _ := filepath.Glob(filepath.Join(home, t.bin))
		sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // the newest version first
		for _, d := range dirs {
			p := filepath.Join(d, ce.Name)
			if fi, serr := os.Stat(p); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				root := "~/" + t.root
				return &sandbox.HintError{Err: err, Tip: fmt.Sprintf(
					"%s is installed on the host at ~/%s, in a home the sandbox does not show: add --ro %s (or ro = [%q] in hutch.toml)",
					ce.Name, strings.TrimPrefix(p, home+"/"), root, root)}
			}
		}
	}
	return err
}
