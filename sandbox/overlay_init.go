package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// layersInit is what hutch-init needs to mount a plan's overlays; the
// supervisor prepares the directories and resolves the driver.
type layersInit struct {
	// Dir holds one directory per layer, each with upper/ and work/.
	Dir string `json:"dir"`
	// Driver is "kernel" or "fuse", never "auto".
	Driver        string `json:"driver"`
	FuseOverlayfs string `json:"fuse_overlayfs,omitempty"`
}

// overlayInit mounts overlays while hutch-init builds the root. With the
// fuse driver, the FUSE daemons run in init's pid namespace, and the
// command in a nested one (stage2, overlay_stage2.go): the steps that
// mount /proc wait for stage2, which mounts a /proc of its own namespace
// and pivots, so that no /proc the command can reach shows a daemon.
type overlayInit struct {
	cfg      *layersInit
	uid      uint32
	deferred []Mount // the /proc steps, for stage2
}

// newOverlayInit is nil when the plan overlays nothing.
func newOverlayInit(cfg *initConfig) *overlayInit {
	if cfg.Layers == nil {
		return nil
	}
	return &overlayInit{cfg: cfg.Layers, uid: cfg.Plan.UID}
}

// staged reports whether the command runs in stage2.
func (o *overlayInit) staged() bool { return o != nil && o.cfg.Driver == OverlayFuse }

// defers sets m aside for stage2 when it must be.
func (o *overlayInit) defers(m Mount) bool {
	if !o.staged() || (m.Dst != "/proc" && !strings.HasPrefix(m.Dst, "/proc/")) {
		return false
	}
	o.deferred = append(o.deferred, m)
	return true
}

func (o *overlayInit) dirs(layer string) (upper, work string) {
	d := filepath.Join(o.cfg.Dir, layer)
	return filepath.Join(d, "upper"), filepath.Join(d, "work")
}

// maxOverlayOpts is what fits in mount(2)'s one page of options, with
// room for the flags added below.
const maxOverlayOpts = 4000

// relativeLowers chdirs into the directory that holds every lower (an
// image's layers all sit in one store directory) and names them relative
// to it; restore goes back.
func relativeLowers(lowers []string) (string, func(), error) {
	if len(lowers) == 0 {
		return "", func() {}, errors.New("no lower directories")
	}
	base := filepath.Dir(filepath.Dir(lowers[0]))
	var rel []string
	for _, l := range lowers {
		r, err := filepath.Rel(base, l)
		if err != nil || strings.HasPrefix(r, "..") {
			return "", func() {}, fmt.Errorf("the image's layers are not in one directory (%s)", l)
		}
		rel = append(rel, r)
	}
	old, err := os.Getwd()
	if err != nil {
		return "", func() {}, err
	}
	if err := unix.Chdir(base); err != nil {
		return "", func() {}, err
	}
	return strings.Join(rel, ":"), func() { unix.Chdir(old) }, nil
}

// mount shows m.Src at m.Dst through an overlay.
func (o *overlayInit) mount(b *rootBuilder, m Mount) error {
	if o == nil {
		return errors.New("the plan has an overlay but no layers were prepared")
	}
	if err := mkMountpoint(b.root, m.Dst, true); err != nil {
		return err
	}
	dst := b.path(m.Dst)
	upper, work := o.dirs(m.Layer)
	lower := m.Src
	if len(m.Lower) > 0 {
		lower = strings.Join(m.Lower, ":")
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	switch o.cfg.Driver {
	case OverlayKernel:
		if len(opts) > maxOverlayOpts {
			// Mount options are one page: name an image's many layers
			// relative to their common directory instead.
			short, restore, err := relativeLowers(m.Lower)
			if err != nil {
				return err
			}
			defer restore()
			opts = fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", short, upper, work)
			if len(opts) > maxOverlayOpts {
				return fmt.Errorf("the image has too many layers (%d) for one overlay mount's options", len(m.Lower))
			}
		}
		// userxattr: a user namespace may not write trusted.* xattrs, and
		// without this option deleting a lower directory fails with EIO.
		err := unix.Mount("overlay", dst, "overlay", mutFlags("overlay", unix.MS_NOSUID|unix.MS_NODEV), opts+",userxattr")
		if err != nil {
			return withHint(fmt.Errorf("mounting the kernel overlay: %w", err),
				"the kernel refused an overlay in a user namespace (it needs Linux 5.11+); use fuse-overlayfs instead: --overlay fuse (hutch doctor says what works here)")
		}
		return nil
	case OverlayFuse:
		opts += ",allow_other"
		if strings.HasPrefix(m.Layer, layerRoot) && o.uid == 0 {
			// Root inside may edit the host's root-owned system files in
			// its own layer, which the kernel's overlay cannot allow.
			opts += ",squash_to_root"
		}
		cmd := exec.Command(o.cfg.FuseOverlayfs, "-o", opts, dst)
		cmd.Env = []string{}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		// fuse-overlayfs mounts, then daemonizes: its first process exits
		// once the mount is live, and the daemon, reparented to us (PID 1),
		// dies with the sandbox's pid namespace.
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return withHint(fmt.Errorf("fuse-overlayfs: %s", msg),
				"check that /dev/fuse is usable (hutch doctor), or use the kernel's overlay: --overlay kernel")
		}
		// fuse-overlayfs run as root asks for suid; the sandbox never wants it.
		attr := unix.MountAttr{Attr_set: mutAttr("fuse", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)}
		return unix.MountSetattr(unix.AT_FDCWD, dst, 0, &attr)
	}
	return fmt.Errorf("unknown overlay driver %q", o.cfg.Driver)
}
