package sandbox

import (
	"strings"
	"testing"
)

// TestOverlayPlanGolden pins layered plans, beside TestPlanGolden's
// (refresh with go test ./sandbox -update).
func TestOverlayPlanGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		fs   Filesystem
		user string
	}{
		{"overlay-project", Filesystem{ProjectMode: "overlay", Session: "demo"}, ""},
		{"overlay-home", Filesystem{Home: "overlay", Overlay: "fuse"}, ""},
		{"overlay-root", Filesystem{ProjectMode: "overlay"}, UserRoot},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := testHost()
			h.DataDir, h.FuseOverlayfs = "/home/dev/.local/share/hutch", "/usr/bin/fuse-overlayfs"
			p, err := NewPlan(Spec{Args: []string{"make"}, Filesystem: tt.fs, Process: Process{User: tt.user}}, h)
			if err != nil {
				t.Fatal(err)
			}
			checkGoldenPlan(t, tt.name, p)
		})
	}
}

func TestOverlayPlan(t *testing.T) {
	h := testHost()
	h.DataDir = "/home/dev/.local/share/hutch"
	for _, tt := range []struct {
		fs       Filesystem
		user     string
		overlays string // Dst:Layer of each overlay mount
		hidden   bool   // the data dir is masked
		project  string
	}{
		{Filesystem{}, "", "", false, ""},
		{Filesystem{ProjectMode: "overlay"}, "", "/home/dev/src/app:project", false, "/home/dev/src/app"},
		{Filesystem{Home: "overlay"}, "", "/home/dev:home", true, ""},
		{Filesystem{Home: "ro", ProjectMode: "overlay", Session: "x"}, "", "/home/dev/src/app:project", true, "/home/dev/src/app"},
		// As root, the system directories too.
		{Filesystem{ProjectMode: "overlay"}, UserRoot, "/usr:root-usr /etc:root-etc /opt:root-opt /home/dev/src/app:project", false, "/home/dev/src/app"},
		{Filesystem{}, UserRoot, "", false, ""},
	} {
		p, err := NewPlan(Spec{Filesystem: tt.fs, Process: Process{User: tt.user}}, h)
		if err != nil {
			t.Fatal(err)
		}
		var ovl []string
		hidden := false
		for _, m := range p.Mounts {
			if m.Kind == MountOverlay {
				ovl = append(ovl, m.Dst+":"+m.Layer)
				if m.Src != m.Dst {
					t.Errorf("%+v: an overlay shows its lower at its own path", m)
				}
			}
			if m.Kind == MountHide && m.Dst == h.DataDir {
				hidden = true
			}
		}
		if got := strings.Join(ovl, " "); got != tt.overlays {
			t.Errorf("%+v: overlays %q, want %q", tt.fs, got, tt.overlays)
		}
		if hidden != tt.hidden {
			t.Errorf("%+v: data dir hidden = %v", tt.fs, hidden)
		}
		if (p.Layers == nil) != (tt.overlays == "") {
			t.Errorf("%+v: layers %+v", tt.fs, p.Layers)
		}
		if p.Layers != nil && (p.Layers.Project != tt.project || p.Layers.Session != tt.fs.Session || p.Layers.Driver != "auto") {
			t.Errorf("%+v: layers %+v", tt.fs, p.Layers)
		}
	}
	// A path overlay options cannot carry is refused with its key.
	h.Cwd = "/home/dev/a,b"
	if _, err := NewPlan(Spec{Filesystem: Filesystem{ProjectMode: "overlay"}}, h); err == nil || !strings.Contains(err.Error(), "filesystem.project: /home/dev/a,b cannot be overlaid") {
		t.Errorf("comma: %v", err)
	}
}
