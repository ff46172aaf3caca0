package pid1

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"golang.org/x/sys/unix"
)

// overlayInit mounts overlays while hutch-init builds the root. With the
// fuse driver, the FUSE daemons run in init's pid namespace, and the
// command in a nested one (stage2, overlay_stage2.go): the steps that
// mount /proc wait for stage2, which mounts a /proc of its own namespace
// and pivots, so that no /proc the command can reach shows a daemon.
type overlayInit struct {
	cfg      *wire.LayersInit // nil when nothing is overlaid (a run with services)
	uid      uint32
	deferred []model.Mount // the /proc steps, for stage2
	// services run beside the command (services.go): it then runs in
	// stage2 too, so that its pid namespace shows none of theirs.
	services *serviceGroup
	withSvcs bool
}

// newOverlayInit is nil when the plan overlays nothing and has no services.
func newOverlayInit(cfg *wire.Config) *overlayInit {
	// The mutation "service-pidns" is the old bug: the command in init's
	// pid namespace, where every service's processes show.
	withSvcs := len(cfg.Plan.Services) > 0 && !mutate.Off("service-pidns")
	if cfg.Layers == nil && !withSvcs {
		return nil
	}
	return &overlayInit{cfg: cfg.Layers, uid: cfg.Plan.UID, withSvcs: withSvcs}
}

// staged reports whether the command runs in stage2: with the fuse
// driver, or beside services.
func (o *overlayInit) staged() bool {
	return o != nil && (o.withSvcs || o.cfg != nil && o.cfg.Driver == model.OverlayFuse)
}

// defers sets m aside for stage2 when it must be.
func (o *overlayInit) defers(m model.Mount) bool {
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

// mount shows m.Src at m.Dst through an overlay. Every layer is opened
// once, as binds' sources are (hostopen.go), and handed to the overlay as
// that handle: the kernel's through fsconfig, fuse-overlayfs as
// /proc/self/fd/N of an inherited fd.
func (o *overlayInit) mount(b *rootBuilder, m model.Mount) error {
	if o == nil || o.cfg == nil {
		return errors.New("the plan has an overlay but no layers were prepared")
	}
	target, err := b.mkMountpointFd(m.Dst, true)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	upper, work := o.dirs(m.Layer)
	lowers := m.Lower
	if len(lowers) == 0 {
		lowers = []string{m.Src}
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, d := range append(append([]string(nil), lowers...), upper, work) {
		fd, err := openHostDir(d)
		if err != nil {
			return fmt.Errorf("opening the overlay's layer %s: %w", d, err)
		}
		fds = append(fds, fd)
	}
	switch o.cfg.Driver {
	case model.OverlayKernel:
		err := kernelOverlay(target, fds[:len(lowers)], fds[len(lowers)], fds[len(lowers)+1])
		if err != nil {
			return hint.With(fmt.Errorf("mounting the kernel overlay: %w", err),
				"the kernel refused an overlay in a user namespace (it needs Linux 5.11+); use fuse-overlayfs instead: --overlay fuse (hutch doctor says what works here)")
		}
		return nil
	case model.OverlayFuse:
		dst := b.path(m.Dst)
		// The lowers go as inherited fds, which fuse-overlayfs opens
		// through /proc/self/fd. It resolves its upper and work
		// directories to paths again whatever it is given (realpath), so
		// they go as the paths just checked: they lie in hutch's data
		// directory, which no sandbox sees.
		var files []*os.File
		var lowerOpt []string
		for i, fd := range fds[:len(lowers)] {
			f := os.NewFile(uintptr(fd), "layer")
			defer f.Close()
			fds[i] = -1 // the *os.File closes it
			files = append(files, f)
			lowerOpt = append(lowerOpt, fmt.Sprintf("/proc/self/fd/%d", 3+i))
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,allow_other", strings.Join(lowerOpt, ":"), upper, work)
		if strings.HasPrefix(m.Layer, model.LayerRootPrefix) && o.uid == 0 {
			// Root inside may edit the host's root-owned system files in
			// its own layer, which the kernel's overlay cannot allow.
			opts += ",squash_to_root"
		}
		cmd := exec.Command(o.cfg.FuseOverlayfs, "-o", opts, dst)
		cmd.Env = []string{}
		cmd.ExtraFiles = files
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
			return hint.With(fmt.Errorf("fuse-overlayfs: %s", msg),
				"check that /dev/fuse is usable (hutch doctor), or use the kernel's overlay: --overlay kernel")
		}
		// fuse-overlayfs run as root asks for suid; the sandbox never wants it.
		attr := unix.MountAttr{Attr_set: mutAttr("fuse", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)}
		return unix.MountSetattr(unix.AT_FDCWD, dst, 0, &attr)
	}
	return fmt.Errorf("unknown overlay driver %q", o.cfg.Driver)
}

// kernelOverlay mounts the kernel's overlay of the directory handles onto
// target, through the new mount API: each layer is the handle itself
// (fsconfig's FSCONFIG_SET_FD), and no option string bounds their number.
func kernelOverlay(target int, lowers []int, upper, work int) error {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fs)
	for i, fd := range lowers {
		if err := unix.FsconfigSetFd(fs, "lowerdir+", fd); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) {
				// Before Linux 6.13 overlayfs takes no fd: name the
				// handles through /proc instead, which still resolves to
				// them and nothing else.
				return kernelOverlayByProc(target, lowers, upper, work)
			}
			return fmt.Errorf("lowerdir+: %w", err)
		}
	}
	if err := unix.FsconfigSetFd(fs, "upperdir", upper); err != nil {
		return fmt.Errorf("upperdir: %w", err)
	}
	if err := unix.FsconfigSetFd(fs, "workdir", work); err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	// userxattr: a user namespace may not write trusted.* xattrs, and
	// without this option deleting a lower directory fails with EIO.
	if err := unix.FsconfigSetFlag(fs, "userxattr"); err != nil {
		return fmt.Errorf("userxattr: %w", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return err
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(mutAttr("overlay", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)))
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	return moveMount(mfd, target)
}

func kernelOverlayByProc(target int, lowers []int, upper, work int) error {
	fdPath := func(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }
	var l []string
	for _, fd := range lowers {
		l = append(l, fdPath(fd))
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", strings.Join(l, ":"), fdPath(upper), fdPath(work))
	return unix.Mount("overlay", fdPath(target), "overlay", mutFlags("overlay", unix.MS_NOSUID|unix.MS_NODEV), opts)
}
