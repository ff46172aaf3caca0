package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// scenario is one configuration to time. unavailable, when set, is why it
// is not measured; the row still appears, so that what is missing is
// visible. A hutch feature that lands is measured by filling in argv and
// dropping unavailable.
type scenario struct {
	id, name    string
	argv        []string
	unavailable string
	reference   bool
}

// needsIssue is the text for a hutch feature that has not landed.
func needsIssue(n int) string { return fmt.Sprintf("not available yet (needs issue %d)", n) }

func (b *bench) toolArgv(name string, args ...string) ([]string, string) {
	t := b.tools[name]
	if t == nil || !t.OK {
		if t == nil {
			return nil, name + ": not checked"
		}
		return nil, name + ": " + t.Why
	}
	return append([]string{t.Path}, args...), ""
}

func (b *bench) startupScenarios(ctx context.Context) []scenario {
	var ss []scenario
	tool := func(id, name, tool string, args ...string) {
		argv, why := b.toolArgv(tool, args...)
		ss = append(ss, scenario{id: id, name: name, argv: argv, unavailable: why})
	}
	hutch := func(id, name string, flags []string, why string) {
		s := scenario{id: id, name: name, unavailable: why}
		if why == "" {
			s.argv = b.hutchRun(flags, "true")
		}
		ss = append(ss, s)
	}
	mode := func(m string, extra ...string) string { return b.hutchWorks(ctx, m, extra...) }

	ss = append(ss, scenario{id: "native", name: "native (no sandbox)", argv: []string{b.trueP}})
	tool("unshare", "unshare -Urmpf", "unshare", "-Urmpf", "true")
	tool("bwrap", "bwrap --unshare-all", "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true")
	tool("rootlesskit-host", "rootlesskit --net=host", "rootlesskit", "--net=host", "true")
	slirpWhy := ""
	if t := b.tools["slirp4netns"]; !t.OK {
		slirpWhy = "slirp4netns: " + t.Why
	}
	if slirpWhy == "" {
		tool("rootlesskit-slirp4netns", "rootlesskit --net=slirp4netns", "rootlesskit", "--net=slirp4netns", "--disable-host-loopback", "true")
	} else {
		ss = append(ss, scenario{id: "rootlesskit-slirp4netns", name: "rootlesskit --net=slirp4netns", unavailable: slirpWhy})
	}
	if p := b.podman; p != nil && p.why == "" {
		ss = append(ss, scenario{id: "podman", name: "podman run --rm --network=none", argv: p.run("/usr/bin/true")})
	} else {
		why := "podman: " + b.tools["podman"].Why
		if p != nil {
			why = p.why
		}
		ss = append(ss, scenario{id: "podman", name: "podman run --rm --network=none", unavailable: why})
	}

	// hutch: no network, the host's root, the project (the work dir)
	// bound read-write.
	hutch("hutch", "**hutch**, no network, host root, project rw (subuid map)", nil, "")
	hutch("hutch-single", "hutch --idmap single (one-id map)", []string{"--idmap", "single"}, "")
	// A project shaped like a JavaScript one, for what init's scan for host
	// sockets costs (docs/security.md): 20k files, most in node_modules.
	if dir, err := b.bigProject(); err == nil {
		hutch("hutch-project-20k", "hutch, a project of 20k files (node_modules-like)", []string{"--project", dir}, "")
	} else {
		hutch("hutch-project-20k", "hutch, a project of 20k files (node_modules-like)", nil, "preparing it: "+err.Error())
	}
	hutch("hutch-overlay-kernel", "hutch --project-mode overlay --overlay kernel", overlayKernel, b.hutchFeature(ctx, 5, overlayKernel...))
	hutch("hutch-overlay-fuse", "hutch --project-mode overlay --overlay fuse", overlayFuse, b.hutchFeature(ctx, 5, overlayFuse...))
	hutch("hutch-slirp4netns", "hutch --network slirp4netns", []string{"--network", "slirp4netns"}, mode("slirp4netns"))
	hutch("hutch-proxy", "hutch --network proxy", []string{"--network", "proxy"}, mode("proxy"))
	hutch("hutch-pasta", "hutch --network pasta", []string{"--network", "pasta"}, mode("pasta"))
	// On an image (the same rootfs as podman's), overlaid by each driver.
	imgWhy := b.setupHutchImage(ctx)
	for _, d := range []string{"kernel", "fuse"} {
		flags := []string{"--image", hutchBenchImage, "--overlay", d}
		why := imgWhy
		if why == "" {
			why = b.hutchFeature(ctx, 9, flags...)
		}
		s := scenario{id: "hutch-image-" + d, name: "hutch --image (" + d + " overlay of its layers)", unavailable: why}
		if why == "" {
			s.argv = b.hutchRun(flags, "/usr/bin/true")
		}
		ss = append(ss, s)
	}

	// A bundle, as an engine (Slurm's oci.conf) runs one, and its root
	// directory run without the bundle.
	ss = append(ss, b.ociScenarios(ctx)...)

	for _, c := range b.o.compare {
		run := func(flags ...string) []string {
			return append(append(append([]string{c.path, "run"}, flags...), "--"), "true")
		}
		ss = append(ss,
			scenario{id: "compare-" + c.name, name: "hutch build " + c.name + " (subuid map)", argv: run(), reference: true},
			scenario{id: "compare-" + c.name + "-single", name: "hutch build " + c.name + " --idmap single", argv: run("--idmap", "single"), reference: true})
	}

	// References that explain hutch's numbers.
	ss = append(ss,
		scenario{id: "hutch-version", name: "hutch version (Go start-up and CLI, no sandbox)", argv: []string{b.hutch, "version"}, reference: true},
		scenario{id: "hutch-dry-run", name: "hutch run --dry-run (+ host probe and plan)", argv: []string{b.hutch, "run", "--dry-run", "--", "true"}, reference: true},
	)
	if p, err := b.goHello(ctx); err == nil {
		ss = append(ss, scenario{id: "go-hello", name: "a static Go binary that exits (Go runtime start-up)", argv: []string{p}, reference: true})
	}
	return ss
}

// startup times `true` in every configuration, side by side.
func (b *bench) startup(ctx context.Context) {
	b.log.printf("start-up: %d warm-up + %d counted runs of each configuration", b.o.warmup, b.o.runs)
	var ts []*timed
	for _, s := range b.startupScenarios(ctx) {
		how := ""
		if s.argv != nil {
			how = shellQuote(s.argv)
		}
		r := b.add("startup", s.name, s.id, how, "ms")
		r.Reference = s.reference
		if s.unavailable != "" {
			r.unavailable(s.unavailable)
			continue
		}
		ts = append(ts, &timed{row: r, cmd: b.cmd(s.argv...)})
	}
	// rootlesskit with slirp4netns takes ~60 ms a run; the rest far less.
	b.series(ctx, ts, b.o.warmup, b.o.runs, 30*time.Second)
}

// goHello builds a static Go program that does nothing: the floor for any
// Go process, and hutch starts two.
func (b *bench) goHello(ctx context.Context) (string, error) {
	dir := filepath.Join(b.o.work, "gohello")
	bin := filepath.Join(b.o.work, "bin", "gohello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"go.mod":  "module gohello\n\ngo 1.21\n",
		"main.go": "package main\n\nfunc main() {}\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return installCopy(bin, bin+"-installed") // as hutch is timed (installCopies)
}

// bigProject makes (once) a project of 19.5k files in 3k directories:
// a few top-level directories, a .git with its 256 object directories,
// and node_modules with 1500 packages.
func (b *bench) bigProject() (string, error) {
	dir := filepath.Join(b.o.work, "project-20k")
	if _, err := os.Stat(filepath.Join(dir, ".done")); err == nil {
		return dir, nil
	}
	os.RemoveAll(dir)
	for _, d := range []string{"src", "test", "docs", "scripts", "dist", ".github"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(dir, ".git", "objects", fmt.Sprintf("%02x", i)), 0o755); err != nil {
			return "", err
		}
	}
	for p := 0; p < 1500; p++ {
		pkg := filepath.Join(dir, "node_modules", fmt.Sprintf("pkg%d", p))
		if err := os.MkdirAll(filepath.Join(pkg, "lib"), 0o755); err != nil {
			return "", err
		}
		for j := 0; j < 13; j++ {
			name := filepath.Join(pkg, "lib", fmt.Sprintf("m%d.js", j))
			if j == 0 {
				name = filepath.Join(pkg, "package.json")
			}
			if err := os.WriteFile(name, []byte("{}\n"), 0o644); err != nil {
				return "", err
			}
		}
	}
	return dir, os.WriteFile(filepath.Join(dir, ".done"), nil, 0o644)
}
