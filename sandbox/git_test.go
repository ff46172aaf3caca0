package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestProbeGit builds repositories by hand, as git lays them out: a main
// repository with a linked worktree and a nested submodule, a worktree as
// the project, a submodule as the project, and a directory with no .git.
func TestProbeGit(t *testing.T) {
	d := t.TempDir()
	if r, err := filepath.EvalSymlinks(d); err == nil {
		d = r
	}
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(d, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := "proj/.git/"
	write(g+"HEAD", "ref: refs/heads/main\n")
	write(g+"config", "[core]\n\thooksPath = .husky\n[extensions]\n\tworktreeConfig = true\n")
	write(g+"hooks/pre-commit.sample", "")
	// No info/: it must come out as missing.
	write(g+"worktrees/wt/commondir", "../..\n")
	write(g+"worktrees/wt/gitdir", d+"/wt/.git\n")
	write(g+"worktrees/wt/HEAD", "ref: refs/heads/wt\n")
	write("wt/.git", "gitdir: "+d+"/"+g+"worktrees/wt\n")
	write(g+"modules/lib/a/HEAD", "ref: refs/heads/main\n")
	write(g+"modules/lib/a/config", "[core]\n\tworktree = ../../../../lib/a\n")
	write(g+"modules/lib/a/info/exclude", "")
	write("proj/lib/a/.git", "gitdir: ../../.git/modules/lib/a\n")
	write("proj/docs/README", "")

	main := ProbeGit(filepath.Join(d, "proj"), d)
	for _, want := range []string{g + "config", g + "hooks", g + "worktrees/wt/commondir", g + "modules/lib/a/config", g + "modules/lib/a/info"} {
		if !slices.Contains(main.Protect, filepath.Join(d, want)) {
			t.Errorf("main: %s not protected: %v", want, main.Protect)
		}
	}
	for _, want := range []string{g + "info", g + "modules/lib/a/hooks", "proj/.husky"} {
		if !slices.Contains(main.Missing, filepath.Join(d, want)) {
			t.Errorf("main: %s not missing: %v", want, main.Missing)
		}
	}
	for _, want := range []string{g + "commondir", g + "modules/lib/a/commondir", g + "config.worktree"} {
		if !slices.Contains(main.Absent, filepath.Join(d, want)) {
			t.Errorf("main: %s not checked after the run: %v", want, main.Absent)
		}
	}
	pins := map[string]bool{}
	for _, p := range main.Pins {
		pins[strings.TrimPrefix(p.Path, d+"/")] = p.Dir
	}
	if dir, ok := pins["proj/.git"]; !ok || !dir {
		t.Errorf("main: .git not pinned as a directory: %v", main.Pins)
	}
	for _, f := range []string{g + "modules/lib/a", g + "worktrees/wt"} {
		if dir, ok := pins[strings.TrimSuffix(f, "/")]; !ok || !dir {
			t.Errorf("main: git directory %s not pinned: %v", f, main.Pins)
		}
	}
	for _, f := range []string{"wt/.git", "proj/lib/a/.git"} {
		if dir, ok := pins[f]; !ok || dir {
			t.Errorf("main: pointer file %s not pinned: %v", f, main.Pins)
		}
	}

	wt := ProbeGit(filepath.Join(d, "wt"), d)
	n := 0
	for _, p := range wt.Pins {
		if p.Path == filepath.Join(d, "wt/.git") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("worktree pins = %v, want its pointer file once", wt.Pins)
	}
	if !slices.Contains(wt.Protect, filepath.Join(d, g+"config")) || !slices.Contains(wt.Protect, filepath.Join(d, g+"worktrees/wt/commondir")) {
		t.Errorf("worktree: the common config and its commondir not protected: %v", wt.Protect)
	}

	sub := ProbeGit(filepath.Join(d, "proj/lib/a"), d)
	if !slices.Contains(sub.Protect, filepath.Join(d, g+"modules/lib/a/config")) {
		t.Errorf("submodule: its config not protected: %v", sub.Protect)
	}

	// Hooks linked into the tree are protected where they lead.
	write("linked/.git/HEAD", "ref: refs/heads/main\n")
	write("linked/scripts/hooks/pre-commit", "")
	if err := os.Symlink(d+"/linked/scripts/hooks", d+"/linked/.git/hooks"); err != nil {
		t.Fatal(err)
	}
	if l := ProbeGit(filepath.Join(d, "linked"), d); !slices.Contains(l.Protect, d+"/linked/scripts/hooks") {
		t.Errorf("linked hooks: %v", l.Protect)
	}

	none := ProbeGit(filepath.Join(d, "proj/docs"), d)
	if none.NoDotGit != filepath.Join(d, "proj/docs/.git") || len(none.Pins)+len(none.Protect) != 0 {
		t.Errorf("no repository: %+v", none)
	}
}

// TestPlanGit: protection applies under writable binds only, follows a
// relocated project, and goes with filesystem.git = "rw".
func TestPlanGit(t *testing.T) {
	app := "/home/dev/src/app"
	facts := &GitFacts{Project: app,
		Pins:    []GitPath{{Path: app + "/.git", Dir: true}, {Path: app + "/lib/.git"}},
		Protect: []string{app + "/.git/config", app + "/.git/hooks", "/elsewhere/.git/config"},
		Missing: []string{app + "/.git/info"},
		Absent:  []string{app + "/.git/commondir"},
	}
	plan := func(fs Filesystem, mod func(*Host), workdir ...string) *Plan {
		h := testHost()
		h.Git = facts
		if mod != nil {
			mod(h)
		}
		spec := Spec{Args: []string{"true"}, Filesystem: fs}
		if len(workdir) > 0 {
			spec.Process.Workdir = workdir[0]
		}
		p, err := NewPlan(spec, h)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	gitMounts := func(p *Plan) []string {
		var out []string
		for _, m := range p.Mounts {
			if strings.Contains(m.Dst, ".git") {
				out = append(out, m.Kind+" "+m.Dst)
			}
		}
		return out
	}
	want := []string{"bind " + app + "/.git", "remount-ro " + app + "/lib/.git", "remount-ro " + app + "/.git/config",
		"remount-ro " + app + "/.git/hooks", "tmpfs " + app + "/.git/info"}
	if got := gitMounts(plan(Filesystem{}, nil)); !slices.Equal(got, want) {
		t.Errorf("default:\n got %q\nwant %q", got, want)
	}
	if p := plan(Filesystem{}, nil); len(p.GitAfter) != 1 || !p.GitAfter[0].Quarantine {
		t.Errorf("default: after-run checks %v", p.GitAfter)
	}
	for _, fs := range []Filesystem{{Git: GitRW}, {ProjectMode: "ro"}, {ProjectMode: "overlay"}} {
		if p := plan(fs, nil); len(gitMounts(p)) != 0 || len(p.GitAfter) != 0 {
			t.Errorf("%+v: %q %v, want nothing", fs, gitMounts(p), p.GitAfter)
		}
	}
	// Facts about another directory are not these.
	if got := gitMounts(plan(Filesystem{}, func(h *Host) { h.Cwd = "/home/dev/src/other" })); len(got) != 0 {
		t.Errorf("stale facts used: %q", got)
	}
	// A writable bind that reaches a git directory outside the project.
	if got := gitMounts(plan(Filesystem{RW: []string{"/elsewhere"}}, nil)); !slices.Contains(got, "remount-ro /elsewhere/.git/config") {
		t.Errorf("--rw /elsewhere: %q", got)
	}
	// With an image and process.workdir the project moves, and so do the mounts.
	got := gitMounts(plan(Filesystem{Root: "image:node"}, withImage, "/src"))
	if !slices.Contains(got, "remount-ro /src/.git/config") || !slices.Contains(got, "bind /src/.git") {
		t.Errorf("relocated project: %q", got)
	}
}
