package layers

import "testing"

func TestRunsLater(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{".git", true}, {".git/config", true}, {".git/hooks/pre-commit", true}, {"vendor/x/.git", true},
		{"vendor/x/.git/modules/y/config", true}, {".envrc", true}, {"sub/.envrc", true},
		{"hutch.toml", true}, {"sub/.hutch.toml", true}, {".vscode", true}, {".vscode/tasks.json", true},
		{"a/.idea/workspace.xml", true},
		{".git/objects/ab/cdef", false}, {".git/refs/heads/main", false}, {".git/logs/HEAD", false},
		{".git/index", false}, {".git/HEAD", false}, {".git/packed-refs", false}, {"sub/.git/refs/heads/x", false},
		{".git/index/x", true}, {".git/rebase-merge/git-rebase-todo", true}, {".git/sequencer/todo", true},
		{".git/modules/x/objects/ab/cd", true}, {".git/modules/x/config", true}, {".git/worktrees/w/HEAD", true},
		{".git/commondir", true}, {".git/config.worktree", true}, {"sub/.git", true}, {".GIT/config", true}, {"Hutch.toml", true}, {".VSCode/x", true},
		{"src/main.go", false}, {".gitignore", false}, {".github/workflows/ci.yml", false},
		{"hutch.toml.bak", false}, {"hutch.toml/x", false}, {".envrc.d/x", false}, {"docs/.git-notes", false},
	} {
		if got := RunsLater(tc.path) != ""; got != tc.want {
			t.Errorf("RunsLater(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestRunLaterAllowed(t *testing.T) {
	for _, tc := range []struct {
		all   bool
		paths []string
		rel   string
		want  bool
	}{
		{false, nil, ".envrc", false},
		{false, []string{"."}, ".envrc", false},
		{false, []string{"sub"}, "sub/.envrc", false},
		{false, []string{".envrc"}, ".envrc", true},
		{false, []string{".envrc"}, "sub/.envrc", false},
		{false, []string{".git/hooks"}, ".git/hooks/pre-commit", true},
		{false, []string{".git/hooks"}, ".git/config", false},
		{false, []string{".vscode"}, ".vscode/settings.json", true},
		{true, nil, ".git/config", true},
	} {
		if got := RunLaterAllowed(tc.all, tc.paths)(tc.rel); got != tc.want {
			t.Errorf("RunLaterAllowed(%v, %q)(%q) = %v, want %v", tc.all, tc.paths, tc.rel, got, tc.want)
		}
	}
}
