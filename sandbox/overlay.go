package sandbox

import (
	"fmt"
	"os/exec"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

// Layered filesystems (docs/layers.md). A plan that overlays anything
// (filesystem.project = "overlay", filesystem.home = "overlay", or a named
// session) shows those trees through an overlay whose upper layer lives in
// a session directory under the user's data dir. With process.user =
// "root", the host's system directories are overlaid too, so that writes
// to /usr/local land in the upper layer instead of failing (for your own
// uid they are not writable anyway, and each overlay costs a mount).
// Sessions keep the upper layers between runs; `hutch diff`, `apply` and
// `discard` work on them.

// MountOverlay and the overlay drivers are the plan's (sandbox/model).
const (
	MountOverlay  = model.MountOverlay
	OverlayAuto   = model.OverlayAuto
	OverlayKernel = model.OverlayKernel
	OverlayFuse   = model.OverlayFuse
)

// Layer names: "project", "home", and "root-DIR" for a system directory.
const (
	LayerProject    = session.LayerProject
	LayerHome       = session.LayerHome
	LayerRootPrefix = model.LayerRootPrefix
)

// LayersPlan is the layered part of a plan (sandbox/model).
type LayersPlan = model.LayersPlan

// layered reports whether a spec overlays anything.
func layered(fs Filesystem) bool {
	return fs.ProjectMode == "overlay" || fs.Home == "overlay" || fs.Session != ""
}

// overlayPathError says why a path cannot be an overlay layer: overlay
// mount options separate with ',' and lower directories with ':'.
func overlayPathError(p string) error {
	if strings.ContainsAny(p, ",:\\\n") {
		return fmt.Errorf("%s cannot be overlaid: its path holds a ',', ':', '\\' or newline, which overlay mount options cannot carry", p)
	}
	return nil
}

// planLayers fills in the layered part of p once its mounts are laid out:
// nil when nothing is overlaid.
func planLayers(p *Plan, fs Filesystem, host *Host, project string) (*LayersPlan, error) {
	var lp *LayersPlan
	for _, m := range p.Mounts {
		if m.Kind != MountOverlay {
			continue
		}
		if err := overlayPathError(m.Src); err != nil {
			return nil, &FieldError{Key: "filesystem." + map[bool]string{true: "home", false: "project"}[m.Layer == LayerHome], Msg: err.Error()}
		}
		if lp == nil {
			lp = &LayersPlan{Driver: fs.Overlay, Session: fs.Session, Dir: session.Dir(host.DataDir), FuseOverlayfs: host.FuseOverlayfs}
		}
		if m.Layer == LayerProject {
			lp.Project = project
		}
	}
	if lp != nil {
		if err := overlayPathError(lp.Dir); err != nil {
			return nil, withHint(err, "set XDG_DATA_HOME to a directory whose path has none of them")
		}
	}
	return lp, nil
}

// FindFuseOverlayfs is the fuse-overlayfs binary on PATH, or "".
func FindFuseOverlayfs() string {
	p, err := exec.LookPath("fuse-overlayfs")
	if err != nil {
		return ""
	}
	return p
}
