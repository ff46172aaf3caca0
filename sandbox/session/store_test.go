package session

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindSession(t *testing.T) {
	dir := t.TempDir()
	mk := func(d, project string) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := WriteMeta(d, &Meta{Version: 1, Name: filepath.Base(d), Project: project}); err != nil {
			t.Fatal(err)
		}
	}
	a, b, nested := "/src/a", "/src/b", "/src/a/sub"
	mk(filepath.Join(dir, projectScope(a), "wip"), a)
	mk(filepath.Join(dir, projectScope(b), "wip"), b)
	mk(filepath.Join(dir, projectScope(nested), "wip"), nested)
	mk(filepath.Join(dir, "old"), a) // made before names were scoped
	mk(filepath.Join(dir, projectScope(b), "only"), b)

	for _, tc := range []struct {
		name, cwd, wantProject, wantErr string
	}{
		{"wip", "/src/a", a, ""},
		{"wip", "/src/a/x/y", a, ""},
		{"wip", "/src/a/sub/z", nested, ""},
		{"wip", "/src/b", b, ""},
		{"wip", "/elsewhere", "", "session wip exists in 3 projects"},
		{"only", "/elsewhere", b, ""},
		{"old", "/elsewhere", a, ""},
		{"none", "/src/a", "", "no such session"},
	} {
		d, m, err := findSession(dir, tc.name, tc.cwd)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("findSession(%s from %s) = %s, %v; want error %q", tc.name, tc.cwd, d, err, tc.wantErr)
			}
			continue
		}
		if err != nil || m.Project != tc.wantProject || filepath.Base(d) != tc.name {
			t.Errorf("findSession(%s from %s) = %s, %v; want the session of %s", tc.name, tc.cwd, d, err, tc.wantProject)
		}
	}
	var amb *AmbiguousSessionError
	if _, _, err := findSession(dir, "wip", "/"); !errors.As(err, &amb) || len(amb.Projects) != 3 {
		t.Errorf("ambiguous name: %v", err)
	}

	// A run uses an older session of its own project where it is, and
	// scopes a new one.
	if got, _ := RunDir(dir, a, "old"); got != filepath.Join(dir, "old") {
		t.Errorf("RunDir(old, a) = %s", got)
	}
	if got, _ := RunDir(dir, b, "old"); got != filepath.Join(dir, projectScope(b), "old") {
		t.Errorf("RunDir(old, b) = %s", got)
	}
	if s := projectScope("/x/my proj,1"); !strings.HasPrefix(s, "@my_proj_1-") || len(s) != len("@my_proj_1-")+16 {
		t.Errorf("projectScope = %q", s)
	}
}
