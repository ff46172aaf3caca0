package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/userns"
)

// Bind is one [[filesystem.bind]]: the host path Source shown at Target
// inside, "ro" (default) or "rw". It is opened and checked as the binds of
// filesystem.rw and filesystem.ro are (sandbox/pid1/hostopen.go); the
// secrets under Source stay masked at their place under Target.
type Bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// Mode is "ro" (default) or "rw".
	Mode string `json:"mode,omitempty"`
	// NoExec mounts it noexec (an OCI bundle's "noexec" option).
	NoExec bool `json:"noexec,omitempty"`
}

// Bind modes.
const (
	BindRO = "ro"
	BindRW = "rw"
)

// Bundle is what an OCI bundle's config.json fixes that no profile key
// says (sandbox/ocispec maps it): the command's exact environment, its
// ids, the capabilities it keeps (never more than hutch's default), and
// rlimits beyond limits.*.
type Bundle struct {
	// Env is the command's whole environment: no host variable passes but
	// those env.keep names, and env.set still applies on top.
	Env []string `json:"env,omitempty"`
	// UID, GID and Groups are the command's ids inside.
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	// Caps are the capabilities the bundle asks for: the command keeps
	// those of them that hutch's default set for root has.
	Caps []string `json:"caps"`
	// ReadOnlyRoot makes / read-only (its submounts keep their own flags).
	ReadOnlyRoot bool `json:"readonly_root,omitempty"`
	// Rlimits are set on the command besides limits.nofile, nproc, fsize.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// ReadOnlyPaths (inside) are made read-only, with what is under them.
	ReadOnlyPaths []string `json:"readonly_paths,omitempty"`
	// UIDMap and GIDMap replace hutch's id maps when set; each host id in
	// them must be the caller's own or in its subordinate range.
	UIDMap []userns.Mapping `json:"uid_map,omitempty"`
	GIDMap []userns.Mapping `json:"gid_map,omitempty"`
	// Seccomp is the bundle's linux.seccomp, installed on top of
	// security.seccomp's filter (it can only narrow it).
	Seccomp json.RawMessage `json:"seccomp,omitempty"`
}

// treeRoot reports whether root is a tree of its own (an image or a
// directory) rather than the host's system.
func treeRoot(root string) bool {
	return strings.HasPrefix(root, "image:") || strings.HasPrefix(root, "dir:")
}

// DirRoot is the root filesystem directory a spec's root names, or "".
func DirRoot(spec Spec) string {
	dir, ok := strings.CutPrefix(spec.Filesystem.Root, "dir:")
	if !ok {
		return ""
	}
	return filepath.Clean(dir)
}

// checkBinds checks [[filesystem.bind]] entries.
func checkBinds(c *checks, binds []Bind) {
	for _, b := range binds {
		c.paths("filesystem.bind", []string{b.Source})
		if !filepath.IsAbs(b.Target) {
			c.bad("filesystem.bind", "target %q must be an absolute path inside the sandbox", b.Target)
		} else if filepath.Clean(b.Target) == "/" {
			c.bad("filesystem.bind", "target %q would cover the whole filesystem", b.Target)
		}
		if b.Mode != "" && b.Mode != BindRO && b.Mode != BindRW {
			c.bad("filesystem.bind", "mode %q of %s is not ro or rw", b.Mode, b.Target)
		}
	}
}

// NewDirRoot is a root filesystem directory as NewPlan needs it: one
// lower layer, under an upper layer of the run's, with the bundle's ids
// (spec.Bundle), or the directory's root without one.
func NewDirRoot(spec Spec) (*ImageRoot, error) {
	dir := DirRoot(spec)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, withHint(fmt.Errorf("root filesystem %s: %w", dir, err), "give the directory a bundle's root.path names (relative to the bundle)")
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("root filesystem %s is not a directory", dir)
	}
	if err := overlayPathError(dir); err != nil {
		return nil, &FieldError{Key: "filesystem.root", Msg: err.Error()}
	}
	r := &ImageRoot{Name: "dir:" + dir, ID: "dir:" + dir, Layers: []string{dir}, UserSpec: "0:0"}
	if b := spec.Bundle; b != nil {
		r.User = image.User{UID: b.UID, GID: b.GID, Groups: b.Groups}
		r.UserSpec = fmt.Sprintf("%d:%d", b.UID, b.GID)
	}
	return r, nil
}

// bundleCaps keeps of caps those the bundle asks for.
func bundleCaps(caps []string, b *Bundle) []string {
	if b == nil {
		return caps
	}
	want := map[string]bool{}
	for _, c := range b.Caps {
		want[c] = true
	}
	var out []string
	for _, c := range caps {
		if want[c] {
			out = append(out, c)
		}
	}
	return out
}

// bundleMaps replaces p's id maps with the bundle's, when it gives them
// and each host id in them is the caller's own or one of its subordinate
// ids (newuidmap checks the same again).
func bundleMaps(p *Plan, b *Bundle, host *Host) error {
	if b == nil || len(b.UIDMap)+len(b.GIDMap) == 0 {
		return nil
	}
	if len(b.UIDMap) == 0 || len(b.GIDMap) == 0 {
		return &FieldError{Key: "linux.uidMappings", Msg: "give both uidMappings and gidMappings, or neither"}
	}
	for _, x := range []struct {
		key  string
		ms   []Mapping
		own  uint32
		subs []userns.Range
	}{{"linux.uidMappings", b.UIDMap, uint32(host.UID), host.SubUIDs}, {"linux.gidMappings", b.GIDMap, uint32(host.GID), host.SubGIDs}} {
		for _, m := range x.ms {
			if !fits(m, x.own, x.subs) {
				return &FieldError{Key: x.key, Msg: fmt.Sprintf("host ids %d-%d are neither yours (%d) nor in your subordinate range (/etc/subuid, /etc/subgid)", m.Outside, uint64(m.Outside)+uint64(m.Size)-1, x.own)}
			}
		}
	}
	single := len(b.UIDMap) == 1 && len(b.GIDMap) == 1 && b.UIDMap[0].Size == 1 && b.GIDMap[0].Size == 1 &&
		b.UIDMap[0].Outside == uint32(host.UID) && b.GIDMap[0].Outside == uint32(host.GID)
	if !single && (host.NewUIDMap == "" || host.NewGIDMap == "") {
		return &FieldError{Key: "linux.uidMappings", Msg: "mapping more than your own id needs newuidmap and newgidmap (the uidmap package)"}
	}
	p.UIDMap, p.GIDMap, p.MapHelpers = b.UIDMap, b.GIDMap, !single
	p.UID, p.GID, p.Groups, p.Caps = b.UID, b.GID, nil, nil
	for _, g := range b.Groups {
		if userns.Contains(p.GIDMap, g) {
			p.Groups = append(p.Groups, g)
		}
	}
	if p.UID == 0 {
		p.Caps = bundleCaps(defaultCaps, b)
	}
	p.NewUIDMap, p.NewGIDMap = "", ""
	if !single {
		p.NewUIDMap, p.NewGIDMap = host.NewUIDMap, host.NewGIDMap
	}
	if !userns.Contains(p.UIDMap, p.UID) || !userns.Contains(p.GIDMap, p.GID) {
		return &FieldError{Key: "process.user", Msg: fmt.Sprintf("uid %d or gid %d has no id in the bundle's uidMappings and gidMappings", p.UID, p.GID)}
	}
	return nil
}

// Mapping is an id map's line.
type Mapping = userns.Mapping

// fits reports whether m's host ids are own, or all in one of subs.
func fits(m Mapping, own uint32, subs []userns.Range) bool {
	lo, hi := uint64(m.Outside), uint64(m.Outside)+uint64(m.Size)
	if lo == uint64(own) && hi == lo+1 {
		return true
	}
	for _, r := range subs {
		if lo >= uint64(r.Start) && hi <= uint64(r.Start)+uint64(r.Count) {
			return true
		}
	}
	return false
}

// bundlePaths makes a bundle's linux.readonlyPaths read-only.
func (pl *planner) bundlePaths() {
	if b := pl.spec.Bundle; b != nil {
		for _, p := range b.ReadOnlyPaths {
			pl.add(Mount{Kind: MountRO, Dst: p, Optional: true})
		}
	}
}

// probeBinds resolves the binds' sources on the host.
func probeBinds(binds []Bind) map[string]string {
	var out map[string]string
	for _, b := range binds {
		src := filepath.Clean(b.Source)
		if r, err := filepath.EvalSymlinks(src); err == nil && r != src {
			if out == nil {
				out = map[string]string{}
			}
			out[src] = r
		}
	}
	return out
}

// checkBundleBinds refuses a bundle's bind whose source is, or lies in,
// what hutch hides (the secrets, hutch's state and data, the runtime
// directory, the profile's hide paths), by its path or its real path: a
// bundle may not widen the profile it runs under. (A bind that holds one
// is shown with it masked: hideRelocated.)
func (pl *planner) checkBundleBinds() error {
	if pl.spec.Bundle == nil || mutate.Off("oci-bind-hidden") {
		return nil
	}
	host := pl.host
	hidden := host.alwaysHidden()
	for _, s := range host.alwaysHidden() {
		if r := host.RealPaths[s]; r != "" {
			hidden = append(hidden, r)
		}
	}
	for _, h := range pl.spec.Filesystem.Hide {
		hidden = append(hidden, pl.expand(h))
	}
	if err := pl.checkBundleRoot(hidden); err != nil {
		return err
	}
	for _, b := range pl.spec.Filesystem.Binds {
		src := pl.expand(b.Source)
		for _, p := range []string{src, host.BindReal[src]} {
			for _, h := range hidden {
				if p != "" && isWithin(h, p) {
					return withHint(&FieldError{Key: "mounts", Msg: fmt.Sprintf("the bind of %s at %s shows %s, which the profile hides", b.Source, b.Target, h)},
						"bind a directory without secrets in it; the administrator's profile decides what stays hidden")
				}
			}
		}
	}
	return nil
}

// checkBundleRoot refuses a bundle's root directory that is, lies in, or
// holds a hidden path, by its path or its real path: the root is a host
// directory shown whole at /, so a root of ~ (or of /) would show ~/.ssh
// at /.ssh, out of reach of every mask, which sit at the host's paths.
func (pl *planner) checkBundleRoot(hidden []string) error {
	dir := DirRoot(pl.spec)
	if dir == "" || mutate.Off("oci-root-hidden") {
		return nil
	}
	for _, p := range []string{dir, pl.host.BindReal[dir]} {
		for _, h := range hidden {
			if p == "" {
				continue
			}
			if isWithin(h, p) {
				return withHint(&FieldError{Key: "root.path", Msg: fmt.Sprintf("the root filesystem %s is %s, which the profile hides", dir, h)},
					"give the bundle a root directory of its own (BUNDLE/rootfs)")
			}
			if isWithin(p, h) {
				return withHint(&FieldError{Key: "root.path", Msg: fmt.Sprintf("the root filesystem %s holds %s, which the profile hides", dir, h)},
					"give the bundle a root directory of its own (BUNDLE/rootfs), without secrets in it")
			}
		}
	}
	return nil
}
