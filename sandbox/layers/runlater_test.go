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
