package sandbox

import (
	"slices"
	"testing"
)

// TestPlanHidesTargets: a secret that is a symlink is masked at its target
// wherever a bind shows the target, and $XDG_RUNTIME_DIR itself wherever
// a bind shows it; a secret bound by its own path stays visible.
func TestPlanHidesTargets(t *testing.T) {
	host := func() *Host {
		h := testHost()
		h.UserRuntimeDir = "/home/dev/.run"
		h.RuntimeDir = "/home/dev/.run/hutch"
		h.RealPaths = map[string]string{
			"/home/dev/.ssh":        "/home/dev/dotfiles/ssh",
			"/home/dev/.aws":        "/srv/elsewhere/aws",
			"/home/dev/.config/gh":  "/home/dev/dotfiles/gh",
			"/home/dev/.local/none": "/nowhere", // not a hidden path: ignored
		}
		return h
	}
	tests := []struct {
		name       string
		spec       Spec
		want, not  []string
		cwdProject string
	}{
		{"home tmpfs", Spec{}, nil, []string{"/home/dev/dotfiles/ssh", "/srv/elsewhere/aws", "/home/dev/.run"}, ""},
		{"home ro", Spec{Filesystem: Filesystem{Home: "ro"}},
			[]string{"/home/dev/.ssh", "/home/dev/dotfiles/ssh", "/home/dev/dotfiles/gh", "/home/dev/.run", "/home/dev/.run/hutch"},
			[]string{"/srv/elsewhere/aws"}, ""},
		{"target's tree bound", Spec{Filesystem: Filesystem{RO: []string{"/srv/elsewhere"}}},
			[]string{"/srv/elsewhere/aws"}, []string{"/home/dev/dotfiles/ssh"}, ""},
		{"target bound by its own path", Spec{Filesystem: Filesystem{RO: []string{"/srv/elsewhere/aws"}}},
			nil, []string{"/srv/elsewhere/aws"}, ""},
		{"runtime dir bound by its own path", Spec{Filesystem: Filesystem{RO: []string{"/home/dev/.run"}}},
			[]string{"/home/dev/.run/hutch"}, []string{"/home/dev/.run"}, ""},
		{"dotfiles as the project", Spec{}, []string{"/home/dev/dotfiles/ssh", "/home/dev/dotfiles/gh"}, nil, "/home/dev/dotfiles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host()
			if tt.cwdProject != "" {
				h.Cwd = tt.cwdProject
			}
			p, err := NewPlan(tt.spec, h)
			if err != nil {
				t.Fatal(err)
			}
			var hidden []string
			for _, m := range p.Mounts {
				if m.Kind == MountHide {
					hidden = append(hidden, m.Dst)
				}
			}
			for _, w := range tt.want {
				if !slices.Contains(hidden, w) {
					t.Errorf("%s is not hidden; hides: %v", w, hidden)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(hidden, n) {
					t.Errorf("%s is hidden, want it left alone", n)
				}
			}
		})
	}
}
