package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// bench holds what every measurement needs.
type bench struct {
	o     *options
	log   *logger
	run   *runner
	env   []string // the environment every measured command gets
	hutch string   // the hutch binary under test
	self  string   // a copy of this program, visible inside sandboxes
	trueP string   // absolute path of true(1)

	tools map[string]*Tool
	rep   *Report

	// hutchModes caches whether a hutch feature works: "" when it does,
	// else why not.
	hutchModes map[string]string
	podman     *podmanSetup
	imageWhy   *string // why the image scenarios cannot run (image.go), once known
}

// Tool is a program a measurement needs, as found on this machine.
type Tool struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
	OK      bool   `json:"ok"`
	Why     string `json:"why,omitempty"` // when not OK
}

// Machine describes where the numbers come from.
type Machine struct {
	Hostname   string `json:"hostname"`
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	Memory     string `json:"memory"`
	Kernel     string `json:"kernel"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	User       string `json:"user"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
}

func newBench(ctx context.Context, o *options, stderr io.Writer) (*bench, error) {
	b := &bench{o: o, log: &logger{w: stderr, start: time.Now()}, tools: map[string]*Tool{}, hutchModes: map[string]string{}}
	b.rep = &Report{Date: time.Now().UTC(), Settings: map[string]any{
		"startup_runs": o.runs, "warmup_runs": o.warmup, "fs_runs": o.fsRuns,
		"build_runs": o.buildRuns, "phase_runs": o.phaseRuns, "iperf3_seconds": o.netSecs, "quick": o.quick,
	}}
	b.rep.Machine = probeMachine()
	if l := b.rep.Machine.LoadBefore; loadHigh(l) {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("the machine was busy when the bench started (load average %s): expect noisy numbers", l))
		b.log.printf("warning: load average %s: something else is running; numbers will be noisy", l)
	}
	for _, d := range []string{"bin", "tmp"} {
		if err := os.MkdirAll(filepath.Join(o.work, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating the work directory: %w", err)
		}
	}
	var err error
	if b.run, err = newRunner(filepath.Join(o.work, "tmp")); err != nil {
		return nil, err
	}
	b.env = os.Environ()
	if b.trueP, err = exec.LookPath("true"); err != nil {
		return nil, fmt.Errorf("no true(1) on PATH: %w", err)
	}
	if err := b.buildHutch(ctx); err != nil {
		return nil, err
	}
	if err := b.copySelf(); err != nil {
		return nil, err
	}
	b.findTools(ctx)
	return b, nil
}

func (b *bench) close() {
	b.run.close()
}

// runAll measures every group, in the order of the report.
func (b *bench) runAll(ctx context.Context) *Report {
	start := time.Now()
	steps := []struct {
		group string
		fn    func(context.Context)
	}{
		{"startup", b.startup},
		{"phases", b.phases},
		{"fs", b.fsWork},
		{"gobuild", b.goBuild},
		{"memory", b.memory},
		{"network", b.network},
		{"services", b.services},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			break
		}
		if b.o.wants(s.group) {
			s.fn(ctx)
		}
	}
	b.rep.addRatios(map[string][]string{
		"startup": {"startup/native", "startup/bwrap", "startup/unshare", "startup/rootlesskit-host", "startup/rootlesskit-slirp4netns", "startup/podman"},
		"fs":      {"fs/native", "fs/bwrap-bind"},
		"gobuild": {"gobuild/native"},
	})
	b.rep.Goals = b.goals()
	b.rep.Machine.LoadAfter = loadavg()
	b.rep.Duration = time.Since(start).Seconds()
	for _, name := range sortedKeys(b.tools) {
		b.rep.Tools = append(b.rep.Tools, *b.tools[name])
	}
	return b.rep
}

// rounds is n, or 1 in a -quick run.
func (b *bench) rounds(n int) int {
	if b.o.quick {
		return 1
	}
	return n
}

// add appends a row to the report and returns it.
func (b *bench) add(group, name, id, how, unit string) *Row {
	r := &Row{ID: group + "/" + id, Group: group, Name: name, How: how, Unit: unit, Status: statusError}
	b.rep.Rows = append(b.rep.Rows, r)
	return r
}

// cmd is a command run in the work directory (the sandboxes' project).
func (b *bench) cmd(argv ...string) cmdSpec {
	return cmdSpec{argv: argv, env: b.env, dir: b.o.work}
}

// hutchRun is `hutch run FLAGS -- ARGS`.
func (b *bench) hutchRun(flags []string, args ...string) []string {
	argv := append([]string{b.hutch, "run"}, flags...)
	return append(append(argv, "--"), args...)
}

// hutchBuildFlags are make build's (static, no symbols, no man-page
// generator, hutch-init embedded), so the bench measures the binary users
// install; -buildvcs=false because the tree may belong to someone else (a
// root checkout). initBuildFlags build the embedded hutch-init first.
var (
	hutchBuildFlags = []string{"-trimpath", "-buildvcs=false", "-tags", "urfave_cli_no_docs,hutch_embed_init", "-ldflags", "-s -w"}
	initBuildFlags  = []string{"-trimpath", "-buildvcs=false", "-ldflags", "-s -w"}
	initSumVar      = "github.com/hutch-sandbox/hutch/internal/initexe.Sum"
)

// buildHutch builds the binary under test as make build does: CGO_ENABLED=0
// (noticeably faster to start than the cgo build) and hutchBuildFlags.
func (b *bench) buildHutch(ctx context.Context) error {
	if b.o.hutch != "" {
		b.hutch = b.o.hutch
		b.rep.Hutch = HutchInfo{Binary: b.hutch, Build: "given with -hutch"}
	} else {
		b.hutch = filepath.Join(b.o.work, "bin", "hutch")
		b.log.printf("building hutch from %s", b.o.src)
		flags, err := b.buildInit(ctx)
		if err != nil {
			return err
		}
		args := append([]string{"build"}, flags...)
		cmd := exec.CommandContext(ctx, "go", append(args, "-o", b.hutch, "./cmd/hutch")...)
		cmd.Dir = b.o.src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building hutch in %s: %v\n%s", b.o.src, err, out)
		}
		b.rep.Hutch = HutchInfo{Binary: b.hutch, Build: "CGO_ENABLED=0 go build " + shellQuote(flags)}
	}
	if err := b.installCopies(); err != nil {
		return err
	}
	b.rep.Hutch.Commit = b.o.commit
	if b.rep.Hutch.Commit == "" {
		b.rep.Hutch.Commit = gitDescribe(b.o.src)
	}
	if out, err := exec.Command(b.hutch, "version").Output(); err == nil {
		b.rep.Hutch.Version = strings.TrimSpace(string(out))
	}
	return nil
}

// installCopies times copies of the binaries, as make install (install(1))
// or a package gives them, not the files the linker wrote: measured on
// this VM, a binary fresh from the Go linker (written through mmap) costs
// ~2 ms more CPU per `hutch run` than a cp of the same bytes, its page
// cache being laid out differently; the difference is the file, not the
// program. Every build timed (-compare ones too) gets the same treatment.
func (b *bench) installCopies() error {
	dir := filepath.Join(b.o.work, "bin", "installed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p, err := installCopy(b.hutch, filepath.Join(dir, "hutch"))
	if err != nil {
		return err
	}
	b.hutch = p
	for i, c := range b.o.compare {
		p, err := installCopy(c.path, filepath.Join(dir, "hutch-"+c.name))
		if err != nil {
			return err
		}
		b.o.compare[i].path = p
	}
	return nil
}

// installCopy copies src to dst with read and write, as install(1) does,
// executable, and returns dst.
func installCopy(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 128<<10)
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf); err != nil {
		out.Close()
		return "", fmt.Errorf("installing %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

// buildInit builds cmd/hutch-init as make build does, into the work
// directory, and returns hutch's build flags with the overlay that embeds
// it (the source tree may not be ours to write). A tree from before
// hutch-init was a binary of its own gets the flags it had then.
func (b *bench) buildInit(ctx context.Context) ([]string, error) {
	if _, err := os.Stat(filepath.Join(b.o.src, "cmd", "hutch-init")); err != nil {
		return []string{"-trimpath", "-buildvcs=false", "-tags", "urfave_cli_no_docs", "-ldflags", "-s -w"}, nil
	}
	src, err := filepath.Abs(b.o.src)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(b.o.work, "bin", "hutch-init")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"build"}, initBuildFlags...)
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", bin, "./cmd/hutch-init")...)
	cmd.Dir = b.o.src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building hutch-init in %s: %v\n%s", b.o.src, err, out)
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(src, "internal", "initexe", "hutch-init"): bin}})
	if err != nil {
		return nil, err
	}
	ov := bin + ".overlay.json"
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		return nil, err
	}
	// As make build: the init's sha256 names its cached copy.
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	flags := append(append([]string(nil), hutchBuildFlags...), "-overlay", ov)
	for i := range flags[:len(flags)-1] {
		if flags[i] == "-ldflags" {
			flags[i+1] += " -X " + initSumVar + "=" + hex.EncodeToString(sum[:])
		}
	}
	return flags, nil
}

func gitDescribe(dir string) string {
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "safe.directory=*", "-C", dir}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	c := git("rev-parse", "--short", "HEAD")
	if c == "" {
		return "unknown commit"
	}
	if git("status", "--porcelain", "--untracked-files=no") != "" {
		c += " with uncommitted changes"
	}
	return c
}

// copySelf puts this program where sandboxes see it (the project), to act
// as the network client inside.
func (b *bench) copySelf() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b.self = filepath.Join(b.o.work, "bin", "hutch-bench")
	return copyFile(exe, b.self, 0o755)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// findTools looks for every program a measurement could use, and tries the
// peers once: a peer that is installed but cannot work here (no user
// namespaces, no subuid range) is reported as such, not timed.
func (b *bench) findTools(ctx context.Context) {
	missing := func(name, install string) *Tool {
		return &Tool{Name: name, Why: "not installed (" + install + ")"}
	}
	look := func(name, install string, versionArgs ...string) *Tool {
		p, err := exec.LookPath(name)
		if err != nil {
			return missing(name, install)
		}
		t := &Tool{Name: name, Path: p, OK: true}
		if len(versionArgs) > 0 {
			out, _ := exec.CommandContext(ctx, p, versionArgs...).CombinedOutput()
			t.Version = versionLine(string(out), name)
		}
		return t
	}
	deps := "make bench-deps installs it"
	for _, t := range []*Tool{
		look("bwrap", deps, "--version"),
		look("unshare", "util-linux", "--version"),
		look("rootlesskit", deps, "--version"),
		look("slirp4netns", "make deps installs it", "--version"),
		look("podman", deps, "--version"),
		look("iperf3", deps, "--version"),
		look("hyperfine", deps+"; optional, the bench times with its own harness", "--version"),
		look("tar", "apt-get install tar", "--version"),
		look("go", "Go 1.26 from go.dev", "version"),
		look("newuidmap", "make deps installs uidmap"),
		look("newgidmap", "make deps installs uidmap"),
		look("pasta", "make deps installs passt", "--version"),
		look("fuse-overlayfs", "make deps installs it", "--version"),
	} {
		b.tools[t.Name] = t
	}
	for _, n := range []string{"newuidmap", "newgidmap"} {
		if t := b.tools[n]; t.OK {
			var st syscall.Stat_t
			if syscall.Stat(t.Path, &st) == nil && st.Mode&syscall.S_ISUID != 0 && st.Uid == 0 {
				t.Version = "setuid root"
			} else {
				t.Version = "not setuid root (file capabilities?)"
			}
		}
	}
	b.tools["hutch"] = &Tool{Name: "hutch", Path: b.hutch, OK: true, Version: b.rep.Hutch.Version + ", " + b.rep.Hutch.Commit}

	// A real run of each peer, so that a broken one is named once.
	probe := func(name string, argv ...string) {
		t := b.tools[name]
		if !t.OK {
			return
		}
		if _, err := b.run.run(ctx, b.cmd(argv...), 30*time.Second); err != nil {
			t.OK, t.Why = false, "installed, but cannot run here: "+err.Error()
		}
	}
	probe("bwrap", b.tools["bwrap"].Path, "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", b.trueP)
	probe("unshare", b.tools["unshare"].Path, "-Urmpf", b.trueP)
	probe("rootlesskit", b.tools["rootlesskit"].Path, "--net=host", b.trueP)
	if b.tools["podman"].OK {
		b.podman = b.setupPodman(ctx)
	}
	if t := b.tools["hutch"]; t.OK {
		if why := b.hutchFeature(ctx, 3); why != "" {
			t.OK, t.Why = false, why
		}
	}
	if out, err := exec.Command(b.hutch, "run", "--dry-run", "--json", "--", "true").Output(); err == nil {
		if bytes.Contains(out, []byte(`"map_helpers": true`)) {
			b.rep.Hutch.IDMap = "your /etc/subuid range, through newuidmap/newgidmap"
		} else {
			b.rep.Hutch.IDMap = "one id (no usable subuid range or newuidmap here)"
		}
	}
}

// hutchWorks says why `hutch run --network MODE EXTRA -- true` does not
// work here, or "" when it does.
func (b *bench) hutchWorks(ctx context.Context, mode string, extra ...string) string {
	return b.hutchFeature(ctx, 6, append([]string{"--network", mode}, extra...)...)
}

// Overlaid projects (issue 5), per driver.
var (
	overlayKernel = []string{"--project-mode", "overlay", "--overlay", "kernel"}
	overlayFuse   = []string{"--project-mode", "overlay", "--overlay", "fuse"}
)

// hutchFeature says why `hutch run FLAGS -- true` does not work here, or
// "" when it does. A value or flag hutch rejects as unknown or not
// supported yet is reported against the issue that brings it, so a
// feature starts being measured the day it lands.
func (b *bench) hutchFeature(ctx context.Context, issue int, flags ...string) string {
	key := strings.Join(flags, " ")
	if why, ok := b.hutchModes[key]; ok {
		return why
	}
	_, err := b.run.run(ctx, b.cmd(b.hutchRun(flags, "true")...), 10*time.Second)
	why := ""
	if err != nil {
		msg := err.Error()
		why = "error: " + msg
		for _, s := range []string{"not supported yet", "not one of", "flag provided but not defined"} {
			if strings.Contains(msg, s) {
				why = needsIssue(issue)
			}
		}
	}
	b.hutchModes[key] = why
	return why
}

// versionLine picks the line of a --version output that names the tool
// (fuse-overlayfs prints fusermount's first).
func versionLine(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(strings.ToLower(l), name) {
			return strings.TrimSpace(l)
		}
	}
	return firstLine(out)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func probeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadavg()}
	m.Hostname, _ = os.Hostname()
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				fmt.Sscanf(strings.TrimPrefix(l, "MemTotal:"), "%f", &kb)
			}
		}
		m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
	}
	m.OS = "Linux"
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.Go = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	m.User = fmt.Sprintf("uid %d", os.Getuid())
	return m
}

func utsString(cs []int8) string {
	var sb strings.Builder
	for _, c := range cs {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// loadHigh reports a 1-minute load average above half a CPU.
func loadHigh(l string) bool {
	var one float64
	if _, err := fmt.Sscanf(l, "%f", &one); err != nil {
		return false
	}
	return one > 0.5
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
