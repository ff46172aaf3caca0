package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox/model"
)

// buildRoot lays out plan's mounts on a tmpfs at root and pivots into it.
// It runs in hutch-init, inside the new user and mount namespaces, before
// anything of the command's exists.
// With the fuse driver (ovl.staged), the /proc steps and the pivot are
// left to stage2.
func buildRoot(plan *model.Plan, root string, ovl *overlayInit, listeners []string) error {
	// Nothing we mount may propagate back to the host, and host mounts
	// coming and going should not pin ours.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making / a slave mount: %w", err)
	}
	// An image's overlay is the root itself (its first step); else the
	// root is a tmpfs, made read-only once built.
	if !imageRoot(plan) {
		if err := unix.Mount("tmpfs", root, "tmpfs", mutFlags("root", unix.MS_NOSUID|unix.MS_NODEV), "mode=0755"); err != nil {
			return fmt.Errorf("mounting the root tmpfs: %w", err)
		}
	}
	b := &rootBuilder{root: root, ovl: ovl, image: imageRoot(plan), scratchSize: plan.ScratchSize, listeners: listeners, allowSockets: plan.Sockets}
	defer b.release()
	for _, m := range plan.Mounts {
		if ovl.defers(m) {
			continue
		}
		if err := b.apply(m); err != nil {
			return err
		}
	}
	if ovl.staged() {
		return nil
	}
	b.release()
	return pivot(root, !imageRoot(plan) || plan.RootReadOnly)
}

// imageRoot reports whether plan's / is an image's overlay.
func imageRoot(plan *model.Plan) bool {
	return plan.Image != nil && len(plan.Mounts) > 0 && plan.Mounts[0].Kind == model.MountOverlay && plan.Mounts[0].Dst == "/"
}

type rootBuilder struct {
	root    string
	staging string // a directory on the root tmpfs for generated files
	n       int
	ovl     *overlayInit // mounts overlays (overlay_init.go)
	image   bool         // the root is an image's overlay
	// scratchFd is the one tmpfs behind every Shared tmpfs (scratch.go),
	// a detached mount once haveScratch.
	scratchFd   int
	haveScratch bool
	scratchSize int64

	listeners    []string // the host's pathname sockets (sockets.go)
	allowSockets []string // filesystem.sockets
	scanned      int      // directories the socket scan has listed

	// Handles opened once for all the steps (release closes them): the
	// new root's top directory (of the path rootOf), the host's /, the
	// staging directory's empty file. Each step used to look up the
	// root's long path, or /, again: dozens of walks per run.
	rootFd, hostFd, emptyFd int
	rootOf                  string // "" when rootFd is not open
	haveHost, haveEmpty     bool
}

// path returns dst's location in the new root. dst is absolute and clean.
func (b *rootBuilder) path(dst string) string { return filepath.Join(b.root, dst) }

func (b *rootBuilder) apply(m model.Mount) error {
	if m.Dst == "/" {
		defer b.dropRoot()
	}
	return b.step(m)
}

func (b *rootBuilder) step(m model.Mount) error {
	if b.image && m.Dst != "/" && m.Kind != model.MountSymlink && m.Kind != model.MountFile {
		// An image may have symlinks where hutch mounts (/home ->
		// var/home, /tmp -> var/tmp): they are followed as the command
		// would follow them, inside the image, never out of it.
		in, err := resolveIn(b.root, m.Dst)
		if err != nil {
			return fmt.Errorf("%s %s: %w", m.Kind, m.Dst, err)
		}
		m.Dst = in
	}
	dst := b.path(m.Dst)
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%s %s: %w", m.Kind, m.Dst, err)
	}
	switch m.Kind {
	case model.MountBind:
		return b.bind(m)
	case model.MountTmpfs:
		if m.Shared {
			target, err := b.mkMountpointFd(m.Dst, true)
			if err != nil {
				return wrap(err)
			}
			defer unix.Close(target)
			return wrap(b.sharedTmpfs(m, target))
		}
		if err := b.mkMountpoint(m.Dst, true); err != nil {
			return wrap(err)
		}
		flags := mutFlags("tmpfs", unix.MS_NOSUID|unix.MS_NODEV)
		if m.RO {
			flags |= unix.MS_RDONLY
		}
		opts := fmt.Sprintf("mode=%04o", m.Mode)
		if m.Size > 0 {
			opts += fmt.Sprintf(",size=%d", m.Size)
		}
		return wrap(unix.Mount("tmpfs", dst, "tmpfs", flags, opts))
	case model.MountProc:
		if err := b.mkMountpoint(m.Dst, true); err != nil {
			return wrap(err)
		}
		err := unix.Mount("proc", dst, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		if err != nil {
			return hint.With(wrap(err), "the kernel refuses a new /proc when the host's /proc is partly covered by other mounts (as inside some containers); run hutch on the host or in a container started with an unmasked /proc")
		}
		return nil
	case model.MountSysfs:
		if err := b.mkMountpoint(m.Dst, true); err != nil {
			return wrap(err)
		}
		err := unix.Mount("sysfs", dst, "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, "")
		if err != nil && m.Optional {
			return nil // /sys is then absent, which the plan allows
		}
		return wrap(err)
	case model.MountDevpts:
		if err := b.mkMountpoint(m.Dst, true); err != nil {
			return wrap(err)
		}
		// No gid=5: under a one-id map the tty group is not mapped.
		return wrap(unix.Mount("devpts", dst, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"))
	case model.MountMqueue:
		if err := b.mkMountpoint(m.Dst, true); err != nil {
			return wrap(err)
		}
		err := unix.Mount("mqueue", dst, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		if err != nil && m.Optional {
			os.Remove(dst)
			return nil
		}
		return wrap(err)
	case model.MountSymlink:
		if err := b.mkMountpoint(filepath.Dir(m.Dst), true); err != nil {
			return wrap(err)
		}
		return wrap(os.Symlink(m.Src, dst))
	case model.MountHide:
		// What the command would reach at m.Dst, through any symlink (the
		// last one too): a hide spelled through a link hides its target.
		fd, err := b.openInRoot(m.Dst)
		if err != nil {
			if errors.Is(err, unix.ENOENT) && m.Optional {
				return nil
			}
			return wrap(err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return wrap(err)
		}
		masked := uint64(unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return wrap(tmpfsFd(fd, map[string]string{"mode": "0555"}, masked))
		}
		return wrap(b.maskFile(fd))
	case model.MountRO:
		if _, err := os.Lstat(dst); err != nil {
			if os.IsNotExist(err) && m.Optional {
				return nil
			}
			return wrap(err)
		}
		if err := unix.Mount(dst, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return wrap(err)
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		return wrap(unix.MountSetattr(unix.AT_FDCWD, dst, unix.AT_RECURSIVE, &attr))
	case model.MountSeal:
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		return wrap(unix.MountSetattr(unix.AT_FDCWD, dst, 0, &attr))
	case model.MountFile:
		return wrap(b.file(m))
	case model.MountOverlay:
		return wrap(b.ovl.mount(b, m))
	}
	return fmt.Errorf("unknown mount kind %q", m.Kind)
}

// bind mounts m.Src at m.Dst. The source is opened once, checked and
// mounted from the same handle: its path is never looked up again
// (hostopen.go).
func (b *rootBuilder) bind(m model.Mount) error {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%s %s: %w", m.Kind, m.Dst, err)
	}
	host, err := b.hostFD()
	if err != nil {
		return err
	}
	src, err := openHostAt(host, m.Src)
	if err != nil {
		if m.Optional && errors.Is(err, unix.ENOENT) {
			return nil
		}
		return bindSourceError(m, err)
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return bindSourceError(m, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	target, err := b.mkMountpointFd(m.Dst, isDir)
	if err != nil {
		return wrap(err)
	}
	defer unix.Close(target)
	attr := uint64(unix.MOUNT_ATTR_NOSUID)
	if !m.Dev {
		attr |= unix.MOUNT_ATTR_NODEV
	}
	if m.RO {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	if m.NoExec {
		attr |= unix.MOUNT_ATTR_NOEXEC
	}
	mfd, err := bindFd(src, target, true, mutAttr("bind", attr))
	if err != nil {
		return wrap(err)
	}
	defer unix.Close(mfd)
	return wrap(b.maskSockets(m, src, mfd))
}

func bindSourceError(m model.Mount, err error) error {
	e := fmt.Errorf("cannot bind %s: %w", m.Src, err)
	var le *UntrustedLinkError
	if errors.As(err, &le) {
		if real, rerr := filepath.EvalSymlinks(m.Src); rerr == nil {
			return hint.With(e, "name the real path instead: %s", real)
		}
		return hint.With(e, "name the real path instead (realpath prints it)")
	}
	if errors.Is(err, unix.ENOENT) {
		return hint.With(e, "the path does not exist on the host; create it or remove it from --rw/--ro")
	}
	return e
}

// stage returns the staging directory on the root tmpfs, creating it.
func (b *rootBuilder) stage() (string, error) {
	if b.staging == "" {
		// It stays (read-only, with the root): a file bound from an unlinked
		// source cannot be mounted over, which a sandbox nested in this one
		// needs to do for its own /etc/hostname.
		b.staging = filepath.Join(b.root, ".hutch")
		if err := os.Mkdir(b.staging, 0o755); err != nil && !(b.image && errors.Is(err, os.ErrExist)) {
			return "", err
		}
		if b.image {
			// On an image's overlay the directory would land in the upper
			// layer (and stay in a kept session): the files go on a tmpfs.
			if err := unix.Mount("tmpfs", b.staging, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
				return "", err
			}
		}
	}
	return b.staging, nil
}

// maskFile mounts the staging directory's empty file, read-only, onto the
// handle target.
func (b *rootBuilder) maskFile(target int) error {
	if !b.haveEmpty {
		empty, err := b.emptyFile()
		if err != nil {
			return err
		}
		if b.emptyFd, err = unix.Open(empty, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
		b.haveEmpty = true
	}
	mfd, err := bindFd(b.emptyFd, target, false, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	return unix.Close(mfd)
}

func (b *rootBuilder) emptyFile() (string, error) {
	dir, err := b.stage()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "empty")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return p, os.WriteFile(p, nil, 0o444)
}

// file puts a generated file at m.Dst: written in place when its directory
// is on a writable tmpfs, bound over the existing file otherwise (as for
// /etc inside a read-only bind). A symlink at m.Dst is followed inside the
// new root, as the command would follow it.
func (b *rootBuilder) file(m model.Mount) error {
	target, err := resolveIn(b.root, m.Dst)
	if err != nil {
		if m.Optional {
			return nil
		}
		return err
	}
	dst := b.path(target)
	if b.image {
		// An image made FROM scratch has no /etc: docker makes one for
		// these files, and so does hutch (in the run's upper layer).
		if err := b.mkMountpoint(filepath.Dir(target), true); err != nil && !m.Optional {
			return err
		}
	}
	dir, err := b.stage()
	if err != nil {
		return err
	}
	b.n++
	src := filepath.Join(dir, fmt.Sprintf("file%d", b.n))
	if err := os.WriteFile(src, []byte(m.Data), 0o644); err != nil {
		return err
	}
	if _, err := os.Lstat(dst); os.IsNotExist(err) {
		// Create it when its directory exists and can take it (a tmpfs).
		if f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		} else if m.Optional {
			return nil
		} else {
			return err
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	return unix.MountSetattr(unix.AT_FDCWD, dst, 0, &attr)
}

// resolveIn follows symlinks in p (absolute, inside root) as a process with
// root as its / would, and returns the path inside root.
func resolveIn(root, p string) (string, error) {
	for hops := 0; hops < 40; hops++ {
		cur := "/"
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		followed := false
		for i, part := range parts {
			next := filepath.Join(cur, part)
			fi, err := os.Lstat(filepath.Join(root, next))
			if err != nil {
				if os.IsNotExist(err) {
					return filepath.Join(append([]string{next}, parts[i+1:]...)...), nil
				}
				return "", err
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				link, err := os.Readlink(filepath.Join(root, next))
				if err != nil {
					return "", err
				}
				if !filepath.IsAbs(link) {
					link = filepath.Join(cur, link)
				}
				p = filepath.Join(append([]string{link}, parts[i+1:]...)...)
				followed = true
				break
			}
			cur = next
		}
		if !followed {
			return cur, nil
		}
	}
	return "", fmt.Errorf("too many levels of symbolic links in %s", p)
}

// mkMountpoint creates rel (absolute, inside the new root) as a directory
// or an empty file, refusing to pass through a symlink: a bound tree may
// hold links planted by its owner, and a mount must not land outside its
// place.
func (b *rootBuilder) mkMountpoint(rel string, dir bool) error {
	fd, err := b.mkMountpointFd(rel, dir)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// mkMountpointFd is mkMountpoint, returning an O_PATH handle of the mount
// point: mounting onto the handle, not the path, leaves no moment in which
// a directory on the way could be swapped for a link.
func (b *rootBuilder) mkMountpointFd(rel string, dir bool) (int, error) {
	root, err := b.rootFD()
	if err != nil {
		return -1, err
	}
	if rel == "/" {
		return unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0)
	}
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	fd := root
	defer func() {
		if fd != root && fd >= 0 {
			unix.Close(fd)
		}
	}()
	for i, part := range parts {
		last := i == len(parts)-1
		if last && !dir {
			// Never opened for reading: a FIFO planted there would block.
			nfd, err := unix.Openat(fd, part, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err == unix.ENOENT {
				nfd, err = unix.Openat(fd, part, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			}
			if err != nil {
				return -1, fmt.Errorf("creating mount point %s: %w", rel, err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(nfd, &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK || st.Mode&unix.S_IFMT == unix.S_IFDIR {
				unix.Close(nfd)
				return -1, fmt.Errorf("creating mount point %s: it is a symlink or a directory", rel)
			}
			return nfd, nil
		}
		// A directory on the way usually exists (/dev for /dev/null):
		// look first; the mount point itself usually does not.
		nfd, err := -1, error(unix.ENOENT)
		if !last {
			nfd, err = openDirNoFollow(fd, part)
		}
		if err == unix.ENOENT {
			if merr := unix.Mkdirat(fd, part, 0o755); merr != nil && merr != unix.EEXIST {
				// On a read-only bind the directory must already exist.
				var st unix.Stat_t
				if unix.Fstatat(fd, part, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
					return -1, fmt.Errorf("creating mount point %s: %w", rel, merr)
				}
			}
			nfd, err = openDirNoFollow(fd, part)
		}
		if err != nil {
			if err == unix.ELOOP || err == unix.ENOTDIR {
				return -1, fmt.Errorf("mount point %s passes through a symlink or non-directory at %s", rel, part)
			}
			return -1, fmt.Errorf("creating mount point %s: %w", rel, err)
		}
		if fd != root {
			unix.Close(fd)
		}
		fd = nfd
	}
	nfd := fd
	fd = -1
	return nfd, nil
}

// openDirNoFollow opens the directory name in dir as an O_PATH handle;
// a symlink there is ELOOP or ENOTDIR, never followed.
func openDirNoFollow(dir int, name string) (int, error) {
	return unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// pivot makes root the new / and detaches the old one entirely; readOnly
// then makes / itself read-only (its submounts keep their own flags).
func pivot(root string, readOnly bool) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one at /;
	// unmounting "." then drops the old root without needing a directory
	// for it (runc does the same).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if !readOnly {
		return nil
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &attr); err != nil {
		return fmt.Errorf("making / read-only: %w", err)
	}
	return nil
}

func readSmallFile(p string) ([]byte, error) { return os.ReadFile(p) }

// mutFlags and mutAttr take nosuid or nodev off one kind of mount under
// the mutations "nosuid-KIND" and "nodev-KIND" (internal/mutate); in a
// normal build they return their argument.
func mutFlags(kind string, flags uintptr) uintptr {
	if mutate.Off("nosuid-" + kind) {
		flags &^= unix.MS_NOSUID
	}
	if mutate.Off("nodev-" + kind) {
		flags &^= unix.MS_NODEV
	}
	return flags
}

func mutAttr(kind string, attr uint64) uint64 {
	if mutate.Off("nosuid-" + kind) {
		attr &^= unix.MOUNT_ATTR_NOSUID
	}
	if mutate.Off("nodev-" + kind) {
		attr &^= unix.MOUNT_ATTR_NODEV
	}
	return attr
}
