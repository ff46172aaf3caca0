package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// goBuild times `go build ./cmd/hutch` of a snapshot of hutch's source,
// natively and inside hutch, with the same inputs on both sides:
//
//   - the modules come from the caller's module cache (GOMODCACHE), bound
//     read-only into the sandbox (its home is a tmpfs), with GOPROXY=off;
//   - every run starts from the same build cache in the project: the
//     standard library compiled, hutch's module and its dependencies not
//     (a hard-linked copy of a seed, made before the clock starts). So each
//     run compiles ~20 packages and links, as a first build of a cloned
//     project does;
//   - GOTMPDIR is in the project on both sides (inside, /tmp is a tmpfs),
//     GOENV=off, GOTOOLCHAIN=local, CGO_ENABLED=0 (no C compiler in the
//     measurement), the same GOFLAGS and GOMAXPROCS.
func (b *bench) goBuild(ctx context.Context) {
	rowN := b.add("gobuild", "native", "native", "", "ms")
	rowH := b.add("gobuild", "**hutch**, project bound rw", "hutch", "", "ms")
	rowO := b.add("gobuild", "hutch, project overlay, kernel driver", "hutch-overlay-kernel", "", "ms")
	overlayWhy := b.hutchFeature(ctx, 5, overlayKernel...)
	if overlayWhy != "" {
		rowO.unavailable(overlayWhy)
	}

	gb, err := b.prepareGoBuild(ctx)
	if err != nil {
		rowN.fail(err)
		rowH.fail(err)
		if overlayWhy == "" {
			rowO.fail(err)
		}
		return
	}
	b.log.printf("go build: %d warm-up + %d counted runs each", 1-boolInt(b.o.quick), b.o.buildRuns)
	goArgs := []string{gb.goBin, "build", "-o", filepath.Join(gb.dir, "out", "hutch"), "./cmd/hutch"}
	native := cmdSpec{argv: goArgs, env: append(append([]string(nil), b.env...), gb.env...), dir: gb.src}
	flags := []string{"--project", b.o.work, "--ro", gb.modcache}
	if gb.goroot != "" {
		flags = append(flags, "--ro", gb.goroot)
	}
	for _, kv := range gb.env {
		flags = append(flags, "--env", kv)
	}
	inside := cmdSpec{argv: b.hutchRun(flags, goArgs...), env: b.env, dir: gb.src}
	rowN.How = "env " + strings.Join(gb.env, " ") + " " + shellQuote(goArgs)
	rowH.How = "hutch run --project WORK --ro GOMODCACHE --env (the same) -- " + shellQuote(goArgs)

	fresh := func() error { return gb.freshCache() }
	ts := []*timed{
		{row: rowN, cmd: native, setup: fresh},
		{row: rowH, cmd: inside, setup: fresh},
	}
	if overlayWhy == "" {
		// The whole project overlaid: sources, build cache and output
		// all go through the overlay, as they would for a developer.
		rowO.How = "hutch run " + shellQuote(overlayKernel) + " --project WORK --ro GOMODCACHE --env (the same) -- " + shellQuote(goArgs)
		ts = append(ts, &timed{row: rowO, cmd: cmdSpec{argv: b.hutchRun(append(append([]string(nil), overlayKernel...), flags...), goArgs...), env: b.env, dir: gb.src}, setup: fresh})
	}
	b.series(ctx, ts, 1-boolInt(b.o.quick), b.o.buildRuns, 10*time.Minute)
	os.RemoveAll(gb.cache)
}

type goBuildSetup struct {
	dir      string // WORK/gobuild
	src      string // the snapshot of hutch's source
	seed     string // a GOCACHE holding the compiled standard library
	cache    string // the GOCACHE of one run
	modcache string
	goBin    string
	goroot   string // bound read-only when not under a system directory
	env      []string
}

func (b *bench) prepareGoBuild(ctx context.Context) (*goBuildSetup, error) {
	gb := &goBuildSetup{dir: filepath.Join(b.o.work, "gobuild")}
	gb.src = filepath.Join(gb.dir, "src")
	gb.seed = filepath.Join(gb.dir, "cache-seed")
	gb.cache = filepath.Join(gb.dir, "cache")
	goenv := func(k string) (string, error) {
		out, err := exec.CommandContext(ctx, "go", "env", k).Output()
		if err != nil {
			return "", fmt.Errorf("go env %s: %w", k, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var err error
	if gb.modcache, err = goenv("GOMODCACHE"); err != nil {
		return nil, err
	}
	root, err := goenv("GOROOT")
	if err != nil {
		return nil, err
	}
	gb.goBin = filepath.Join(root, "bin", "go")
	if !underSystemDir(root) {
		gb.goroot = root
	}
	for _, d := range []string{"tmp", "out"} {
		if err := os.MkdirAll(filepath.Join(gb.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	gb.env = []string{
		"GOCACHE=" + gb.cache, "GOMODCACHE=" + gb.modcache, "GOTMPDIR=" + filepath.Join(gb.dir, "tmp"),
		"GOPROXY=off", "GOFLAGS=-mod=readonly", "GOENV=off", "GOTOOLCHAIN=local", "GOWORK=off",
		"GOPATH=" + filepath.Join(gb.dir, "gopath"), "CGO_ENABLED=0",
	}

	// A snapshot, so that edits elsewhere in the tree during the bench
	// change nothing.
	os.RemoveAll(gb.src)
	if err := copyTree(b.o.src, gb.src); err != nil {
		return nil, fmt.Errorf("copying the source: %w", err)
	}
	run := func(dir string, env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, gb.goBin, args...)
		cmd.Dir, cmd.Env = dir, append(append([]string(nil), b.env...), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	seedEnv := append(append([]string(nil), gb.env...), "GOCACHE="+gb.seed)
	if err := run(gb.src, seedEnv, "list", "-deps", "./cmd/hutch"); err != nil {
		return nil, fmt.Errorf("hutch's modules are not all in your module cache (%s); fetch them once with `go mod download` in %s: %w", gb.modcache, b.o.src, err)
	}
	// The seed: the standard library, compiled once and kept between
	// bench runs (~30 s the first time).
	if _, err := os.Stat(filepath.Join(gb.seed, "README")); err != nil {
		b.log.printf("go build: compiling the standard library into the seed cache (once, ~30 s)")
	}
	if err := run(gb.src, seedEnv, "build", "std"); err != nil {
		return nil, err
	}
	return gb, nil
}

// freshCache makes the run's GOCACHE a hard-linked copy of the seed: the
// go command writes new entries as new files and never rewrites one.
func (gb *goBuildSetup) freshCache() error {
	if err := os.RemoveAll(gb.cache); err != nil {
		return err
	}
	return filepath.WalkDir(gb.seed, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(gb.seed, p)
		dst := filepath.Join(gb.cache, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if rel == "trim.txt" {
			return nil
		}
		return os.Link(p, dst)
	})
}

// underSystemDir says whether hutch's root shows p (it binds /usr, /opt
// and the like read-only).
func underSystemDir(p string) bool {
	for _, d := range []string{"/usr/", "/opt/", "/bin/", "/lib/", "/nix/", "/gnu/"} {
		if strings.HasPrefix(p+"/", d) {
			return true
		}
	}
	return false
}

// copyTree copies a source tree, leaving out VCS data, build outputs and
// bench results.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == ".git" || rel == "bin" || rel == filepath.Join("bench", "results")) {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(p, target, 0o644)
		}
		return nil
	})
}
