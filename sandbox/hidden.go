package sandbox

import (
	"os"
	"path/filepath"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// What a sandbox never shows, wherever a bind would reveal it: the secret
// paths in home, hutch's own state and data, and the runtime directory
// ($XDG_RUNTIME_DIR), where ssh-agent, gpg-agent, D-Bus and Wayland listen.
// When one of them is a symlink (~/.ssh -> dotfiles/ssh, a common dotfiles
// layout, or ~/.aws -> /elsewhere/aws), masking the link masks nothing:
// inside, the link resolves to its target, which a bind of home (or of
// the target's own tree) shows. So the target is masked too, and finding
// it is a host fact: ProbeHost resolves these paths once, and NewPlan
// stays pure.

// alwaysHidden lists the host paths NewPlan masks wherever they are
// visible.
func (h *Host) alwaysHidden() []string {
	var out []string
	for _, rel := range secretPaths {
		out = append(out, filepath.Join(h.Home, rel))
	}
	for _, d := range []string{h.UserRuntimeDir, h.RuntimeDir, h.DataDir} {
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

// probeHidden records $XDG_RUNTIME_DIR and where each always-hidden path
// really is, when a symlink leads elsewhere. Paths that do not exist cost
// one lstat.
func (h *Host) probeHidden() {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			h.UserRuntimeDir = r
		}
	}
	for _, s := range h.alwaysHidden() {
		if _, err := os.Lstat(s); err != nil {
			continue
		}
		if r, err := filepath.EvalSymlinks(s); err == nil && r != s {
			if h.RealPaths == nil {
				h.RealPaths = map[string]string{}
			}
			h.RealPaths[s] = r
		}
	}
}

// hideVisible masks the host path s, and its real path when a symlink leads
// elsewhere, wherever one of the visible trees shows it. exact masks it even
// where a bind is the path itself (hutch's own state); a secret bound by
// its own path was asked for by name.
func hideVisible(add func(Mount), host *Host, visible []string, s string, exact bool) {
	targets := []string{s, host.RealPaths[s]}
	if mutate.Off("hide-targets") {
		targets = targets[:1]
	}
	for _, t := range targets {
		if t == "" {
			continue
		}
		for _, v := range visible {
			if isWithin(v, t) && (exact || v != t) {
				add(Mount{Kind: MountHide, Dst: t, Optional: true})
				break
			}
		}
	}
}

// hideRelocated masks, under each bind shown elsewhere than its own path
// ([[filesystem.bind]], a relocated project), what hutch hides wherever
// it shows: the secrets, hutch's state and data, the runtime directory
// (each also where a symlink of it leads), and the spec's own hide paths.
// A bind of ~ at /h shows ~/.ssh at /h/.ssh: masking ~/.ssh, where
// nothing is mounted inside, would hide nothing.
func (pl *planner) hideRelocated() {
	if mutate.Off("hide-relocated") {
		return
	}
	host := pl.host
	var hidden []string
	for _, s := range host.alwaysHidden() {
		hidden = append(hidden, s)
		if r := host.RealPaths[s]; r != "" {
			hidden = append(hidden, r)
		}
	}
	for _, h := range pl.spec.Filesystem.Hide {
		hidden = append(hidden, pl.expand(h))
	}
	done := map[string]bool{}
	for _, m := range pl.p.Mounts {
		if m.Kind == MountHide {
			done[m.Dst] = true
		}
	}
	for _, rb := range pl.relocated {
		src, dst := rb[0], rb[1]
		for _, h := range hidden {
			if h == src || !isWithin(src, h) {
				continue
			}
			rel, err := filepath.Rel(src, h)
			if err != nil {
				continue
			}
			if at := filepath.Join(dst, rel); !done[at] {
				done[at] = true
				pl.add(Mount{Kind: MountHide, Dst: at, Optional: true})
			}
		}
	}
}
