package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox/model"
)

// Git on the host runs what a repository's control files say: core.fsmonitor,
// core.hooksPath, aliases and filter drivers in config, scripts in hooks/,
// drivers named by info/attributes. A command that can write them gets code
// run on the host, outside any sandbox, at the user's next `git status` (or
// the next time a shell prompt or an editor runs it). With filesystem.git =
// "protect" NewPlan makes them read-only inside while the rest of the git
// directory (objects, refs, the index, HEAD, logs) stays writable, so that
// commits, branches and fetches work. Codex's Linux sandbox makes the whole
// .git read-only instead, and commits fail.

// GitFacts is what ProbeGit found of git in and around a project: the paths
// git on the host reads to decide what to run.
type GitFacts struct {
	// Project is the directory the facts are about.
	Project string `json:"project"`
	// Pins are the .git entries that must not be renamed or replaced: the
	// project's .git (a directory, or a `gitdir:` pointer file), the
	// pointer files of linked worktrees and submodules. A directory is
	// bound onto itself (a mount point cannot be renamed: EBUSY), a file
	// read-only.
	Pins []GitPath `json:"pins,omitempty"`
	// Protect are control files and directories that exist: config,
	// config.worktree, commondir, hooks/, info/.
	Protect []string `json:"protect,omitempty"`
	// Missing are hooks/ and info/ directories git would read but which do
	// not exist: an empty read-only directory goes there.
	Missing []string `json:"missing,omitempty"`
	// Absent are files whose creation would redirect git to another
	// directory's config and hooks (a repository's commondir): they cannot
	// be pinned without creating them, so they are checked after the run.
	Absent []string `json:"absent,omitempty"`
	// NoDotGit is the project's .git when there is none: a repository
	// planted there is what git in the project would read.
	NoDotGit string `json:"no_dot_git,omitempty"`

	common string // the project's common git directory, once found
}

// GitPath is a path and whether it is a directory.
type GitPath struct {
	Path string `json:"path"`
	Dir  bool   `json:"dir,omitempty"`
}

// ProbeGit gathers the git facts of project (an absolute path, symlinks
// resolved) for a user whose home is home. It reads only; a project that
// is no repository gives facts with only NoDotGit.
func ProbeGit(project, home string) *GitFacts {
	g := &GitFacts{Project: project}
	dotGit := filepath.Join(project, ".git")
	fi, err := os.Lstat(dotGit)
	switch {
	case err != nil:
		g.NoDotGit = dotGit
		return g
	case fi.IsDir():
		g.gitDir(dotGit, map[string]bool{})
	case fi.Mode().IsRegular():
		g.Pins = append(g.Pins, GitPath{Path: dotGit})
		if gd := readGitFile(dotGit); gd != "" {
			g.gitDir(gd, map[string]bool{})
		}
	}
	if g.common != "" {
		g.hooksPath(project, home)
	}
	// A worktree's pointer file is found both as the project's .git and
	// through its git directory's back-link. Parents are pinned before
	// their children.
	seen := map[string]bool{}
	pins := g.Pins[:0]
	for _, p := range g.Pins {
		if !seen[p.Path] {
			seen[p.Path] = true
			pins = append(pins, p)
		}
	}
	sort.SliceStable(pins, func(i, j int) bool { return depth(pins[i].Path) < depth(pins[j].Path) })
	g.Pins = pins
	// A control file or directory that is a symlink (hooks linked to a
	// directory in the tree) is protected where it leads too: the
	// read-only bind would otherwise follow an absolute link on the host.
	for _, p := range append([]string(nil), g.Protect...) {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				g.Protect = append(g.Protect, r)
			}
		}
	}
	return g
}

// ProjectDir is the project directory NewPlan binds for spec.
func ProjectDir(spec Spec, host *Host) string {
	if spec.Filesystem.Project == "" {
		return host.Cwd
	}
	p := spec.Filesystem.Project
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = filepath.Join(host.Home, strings.TrimPrefix(p[1:], "/"))
	}
	return filepath.Clean(p)
}

// gitDir records a git directory's control files, its common directory's,
// its linked worktrees' and its submodules'.
func (g *GitFacts) gitDir(dir string, seen map[string]bool) {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	if seen[dir] {
		return
	}
	seen[dir] = true
	// Every git directory is pinned: renamed away and replaced by one with
	// a config of its own, it would be what git on the host reads.
	g.Pins = append(g.Pins, GitPath{Path: dir, Dir: true})
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	common := dir
	if cd := filepath.Join(dir, "commondir"); exists(cd) {
		g.Protect = append(g.Protect, cd)
		if b, err := os.ReadFile(cd); err == nil {
			c := strings.TrimRight(string(b), "\r\n")
			if !filepath.IsAbs(c) {
				c = filepath.Join(dir, c)
			}
			common = c
		}
	} else {
		g.Absent = append(g.Absent, cd)
	}
	if cw := filepath.Join(dir, "config.worktree"); exists(cw) {
		g.Protect = append(g.Protect, cw)
	}
	if common != dir {
		g.gitDir(common, seen)
		return
	}
	if g.common == "" {
		g.common = dir
	}
	// With extensions.worktreeConfig git reads config.worktree too: one
	// created where there was none is as good as config.
	if isTrue(configValue(filepath.Join(dir, "config"), "extensions", "worktreeConfig")) {
		if cw := filepath.Join(dir, "config.worktree"); !exists(cw) {
			g.Absent = append(g.Absent, cw)
		}
	}
	if c := filepath.Join(dir, "config"); exists(c) {
		g.Protect = append(g.Protect, c)
	}
	for _, d := range []string{"hooks", "info"} {
		if p := filepath.Join(dir, d); exists(p) {
			g.Protect = append(g.Protect, p)
		} else {
			g.Missing = append(g.Missing, p)
		}
	}
	// Linked worktrees: their own commondir and config.worktree, and the
	// pointer file in each worktree (rewritten, it sends git elsewhere).
	wts, _ := os.ReadDir(filepath.Join(dir, "worktrees"))
	for _, e := range wts {
		wd := filepath.Join(dir, "worktrees", e.Name())
		if !e.IsDir() {
			continue
		}
		g.Pins = append(g.Pins, GitPath{Path: wd, Dir: true})
		for _, f := range []string{"commondir", "config.worktree"} {
			if p := filepath.Join(wd, f); exists(p) {
				g.Protect = append(g.Protect, p)
			}
		}
		if b, err := os.ReadFile(filepath.Join(wd, "gitdir")); err == nil {
			if p := strings.TrimRight(string(b), "\r\n"); filepath.IsAbs(p) {
				g.Pins = append(g.Pins, GitPath{Path: p})
			}
		}
	}
	g.modules(filepath.Join(dir, "modules"), seen)
}

// modules walks a modules/ directory: submodule git directories (a name may
// hold slashes) and, through their core.worktree, the pointer files in the
// submodules' checkouts.
func (g *GitFacts) modules(dir string, seen map[string]bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		md := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(md, "HEAD")); err != nil {
			g.modules(md, seen)
			continue
		}
		if wt := configValue(filepath.Join(md, "config"), "core", "worktree"); wt != "" {
			if !filepath.IsAbs(wt) {
				wt = filepath.Join(md, wt)
			}
			if fi, err := os.Lstat(filepath.Join(wt, ".git")); err == nil && fi.Mode().IsRegular() {
				g.Pins = append(g.Pins, GitPath{Path: filepath.Join(filepath.Clean(wt), ".git")})
			}
		}
		g.gitDir(md, seen)
	}
}

// hooksPath protects the directory core.hooksPath names (husky and
// similar tools point it into the working tree), from the repository's
// config, else the user's, else the system's.
func (g *GitFacts) hooksPath(project, home string) {
	var hp string
	for _, f := range []string{filepath.Join(g.common, "config"), filepath.Join(xdgConfig(home), "git", "config"),
		filepath.Join(home, ".gitconfig"), "/etc/gitconfig"} {
		if hp = configValue(f, "core", "hooksPath"); hp != "" {
			break
		}
	}
	switch {
	case hp == "":
		return
	case hp == "~" || strings.HasPrefix(hp, "~/"):
		hp = filepath.Join(home, hp[1:])
	case !filepath.IsAbs(hp):
		// Relative to the top of the working tree, where hooks run.
		hp = filepath.Join(project, hp)
	}
	hp = filepath.Clean(hp)
	if isWithin(hp, project) {
		return // the project itself, or above it: no read-only bind can cover that and leave the project writable
	}
	if _, err := os.Lstat(hp); err == nil {
		g.Protect = append(g.Protect, hp)
	} else {
		g.Missing = append(g.Missing, hp)
	}
}

func xdgConfig(home string) string {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(home, ".config")
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true
	}
	return false
}

// readGitFile returns the directory a `gitdir: PATH` file points to.
func readGitFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil || len(b) > 4096 {
		return ""
	}
	d, ok := strings.CutPrefix(strings.TrimRight(string(b), "\r\n"), "gitdir: ")
	if !ok {
		return ""
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(filepath.Dir(p), d)
	}
	return filepath.Clean(d)
}

// configValue reads one plain `key = value` of a git config section, the
// last one as git does (no includes, no quoting beyond a pair of double
// quotes): enough for what git itself writes there.
func configValue(path, section, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	in, val := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "[") {
			in = strings.EqualFold(strings.Trim(l, "[] \t"), section)
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if in && ok && strings.EqualFold(strings.TrimSpace(k), key) {
			val = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return val
}

// GitCheck is a path checked on the host after the run (sandbox/model).
type GitCheck = model.GitCheck

// planGit adds the mounts that protect git's control files under writable
// binds (within reports whether a host path is under one, and where it
// shows inside), and the checks that run after the command.
func planGit(p *Plan, g *GitFacts, within func(string) (string, bool)) {
	if mutate.Off("git-protect") {
		return
	}
	add := func(m Mount) { p.Mounts = append(p.Mounts, m) }
	for _, pin := range g.Pins {
		if dst, ok := within(pin.Path); ok {
			if pin.Dir {
				add(Mount{Kind: MountBind, Src: pin.Path, Dst: dst, Optional: true})
			} else {
				add(Mount{Kind: MountRO, Dst: dst, Optional: true})
			}
		}
	}
	for _, path := range g.Protect {
		if dst, ok := within(path); ok {
			add(Mount{Kind: MountRO, Dst: dst, Optional: true})
		}
	}
	// A missing hooks/ or info/ gets an empty read-only tmpfs; its mount
	// point, an empty directory, is what `git init` would have made.
	for _, path := range g.Missing {
		if dst, ok := within(path); ok {
			add(Mount{Kind: MountTmpfs, Dst: dst, Mode: 0o755, Size: 4096, RO: true})
		}
	}
	for _, path := range g.Absent {
		if _, ok := within(path); ok {
			p.GitAfter = append(p.GitAfter, GitCheck{Path: path, Quarantine: true})
		}
	}
	if g.NoDotGit != "" {
		if _, ok := within(g.NoDotGit); ok {
			p.GitAfter = append(p.GitAfter, GitCheck{Path: g.NoDotGit})
		}
	}
}

// CheckGit runs a plan's after-run checks on the host. It returns what the
// user must be told: a planted commondir, moved aside; a repository
// created where the project had none.
func CheckGit(p *Plan) []string {
	var msgs []string
	for _, c := range p.GitAfter {
		if _, err := os.Lstat(c.Path); err != nil {
			continue
		}
		if !c.Quarantine {
			msgs = append(msgs, fmt.Sprintf("the command created %s: git on your host will run what its config and hooks say; check them (git config --local --list; ls %s/hooks) before running git there", c.Path, c.Path))
			continue
		}
		aside := c.Path + ".hutch-planted"
		if err := os.Rename(c.Path, aside); err != nil {
			msgs = append(msgs, fmt.Sprintf("the command planted %s, which sends git to another directory's config and hooks, and it could not be moved aside (%v): remove it before running git", c.Path, err))
			continue
		}
		msgs = append(msgs, fmt.Sprintf("the command planted %s, which sends git to another directory's config and hooks; moved it to %s", c.Path, aside))
	}
	return msgs
}
