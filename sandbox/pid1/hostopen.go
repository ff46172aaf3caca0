package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Sources are opened once and mounted from that handle (docs/security.md,
// "Bind sources swapped between check and mount"). A profile's binds are
// checked when it is loaded, but a process that can write the project (a
// second sandbox sharing it) can swap a checked directory for a symlink to
// ~/.ssh before init mounts it. So init opens every source one component
// at a time without following symlinks, checks what it got on that
// handle, and mounts the handle itself (open_tree + move_mount), never the
// path again.

// UntrustedLinkError: a source's path passes through a symlink that a
// sandbox could have planted or swapped.
type UntrustedLinkError struct {
	Path string // the path asked for
	Link string // the symlink in it
}

func (e *UntrustedLinkError) Error() string {
	return fmt.Sprintf("%s passes through the symlink %s, which hutch does not follow: a process that can write where it lies could point it elsewhere between hutch's check and the mount", e.Path, e.Link)
}

// openHost opens the host path p (absolute) as an O_PATH handle, one
// component at a time with O_NOFOLLOW. A symlink on the way (the last
// component included) is followed only when no sandbox could have made
// or swapped it (trustedLink): /lib -> usr/lib, /home -> var/home.
func openHost(p string) (int, error) {
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	return openHostAt(root, p)
}

// openHostAt is openHost from root, a handle of the host's / that the
// caller keeps open.
func openHostAt(root int, p string) (int, error) {
	if !filepath.IsAbs(p) {
		return -1, fmt.Errorf("%s is not an absolute path", p)
	}
	want := p
	for hops := 0; hops <= 40; hops++ {
		fd, next, err := walkHost(root, p, want)
		if err != nil || next == "" {
			return fd, err
		}
		p = next
	}
	return -1, &os.PathError{Op: "open", Path: want, Err: unix.ELOOP}
}

// walkHost opens p from root; at a trusted symlink it returns the path to
// walk next instead.
func walkHost(root int, p, want string) (int, string, error) {
	fd, err := unix.Dup(root)
	if err != nil {
		return -1, "", err
	}
	parts := strings.Split(strings.Trim(filepath.Clean(p), "/"), "/")
	cur := "/"
	for i, part := range parts {
		if part == "" {
			continue
		}
		nfd, err := unix.Openat(fd, part, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return -1, "", &os.PathError{Op: "open", Path: filepath.Join(cur, part), Err: err}
		}
		var st, parent unix.Stat_t
		if err := unix.Fstat(nfd, &st); err != nil {
			unix.Close(fd)
			unix.Close(nfd)
			return -1, "", err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			unix.Close(fd)
			fd, cur = nfd, filepath.Join(cur, part)
			continue
		}
		err = unix.Fstat(fd, &parent)
		unix.Close(fd)
		link := filepath.Join(cur, part)
		if err != nil || !trustedLink(&st, &parent) {
			unix.Close(nfd)
			return -1, "", &UntrustedLinkError{Path: want, Link: link}
		}
		target, err := readlinkFd(nfd)
		unix.Close(nfd)
		if err != nil {
			return -1, "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		return -1, filepath.Join(append([]string{target}, parts[i+1:]...)...), nil
	}
	return fd, "", nil
}

// trustedLink reports whether no sandbox could have made or swapped the
// symlink link in the directory parent: both belong to an id outside the
// sandbox's user namespace (the host's root, shown as the overflow id),
// and nobody else may rename entries in parent.
func trustedLink(link, parent *unix.Stat_t) bool {
	ov := overflowID()
	if link.Uid != ov || parent.Uid != ov {
		return false
	}
	return parent.Mode&0o022 == 0 || parent.Mode&unix.S_ISVTX != 0
}

var overflowID = sync.OnceValue(func() uint32 {
	b, err := os.ReadFile("/proc/sys/kernel/overflowuid")
	if err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			return uint32(n)
		}
	}
	return 65534
})

func readlinkFd(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// reopenDir turns an O_PATH handle of a directory into one that can be
// read (fsconfig and getdents refuse O_PATH).
func reopenDir(fd int) (int, error) {
	return unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// openHostDir opens a host directory (an overlay's layer) for reading,
// through openHost.
func openHostDir(p string) (int, error) {
	fd, err := openHost(p)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	return reopenDir(fd)
}

// bindFd mounts a copy of the tree at the handle src (recursively when
// rec) onto the handle target, with attr set on it first, so that it is
// never visible writable. It returns the mounted tree's handle.
func bindFd(src, target int, rec bool, attr uint64) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	setFlags := uint(unix.AT_EMPTY_PATH)
	if rec {
		flags |= unix.AT_RECURSIVE
		setFlags |= unix.AT_RECURSIVE
	}
	mfd, err := unix.OpenTree(src, "", flags)
	if err != nil {
		return -1, fmt.Errorf("open_tree: %w", err)
	}
	if attr != 0 {
		if err := unix.MountSetattr(mfd, "", setFlags, &unix.MountAttr{Attr_set: attr}); err != nil {
			unix.Close(mfd)
			return -1, fmt.Errorf("mount_setattr: %w", err)
		}
	}
	if err := moveMount(mfd, target); err != nil {
		unix.Close(mfd)
		return -1, err
	}
	return mfd, nil
}

func moveMount(mfd, target int) error {
	if err := unix.MoveMount(mfd, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// tmpfsFd mounts a new tmpfs with the options opts (key=value) and the
// mount attributes attr onto the handle target.
func tmpfsFd(target int, opts map[string]string, attr uint64) error {
	mfd, err := detachedTmpfs(opts, attr)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	return moveMount(mfd, target)
}

// detachedTmpfs makes a new tmpfs with the options opts (key=value) and
// returns its mount, with the attributes attr, attached nowhere.
func detachedTmpfs(opts map[string]string, attr uint64) (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	for k, v := range opts {
		if err := unix.FsconfigSetString(fs, k, v); err != nil {
			return -1, fmt.Errorf("tmpfs option %s=%s: %w", k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("creating a tmpfs: %w", err)
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(attr))
	if err != nil {
		return -1, fmt.Errorf("fsmount: %w", err)
	}
	return mfd, nil
}

// openInRoot opens p (absolute, inside root) as the command would reach
// it once root is its /: symlinks, the last one included, are followed
// without ever leaving root (RESOLVE_IN_ROOT), in one step of the kernel's.
func (b *rootBuilder) openInRoot(p string) (int, error) {
	rfd, err := b.rootFD()
	if err != nil {
		return -1, err
	}
	for {
		fd, err := unix.Openat2(rfd, strings.TrimPrefix(p, "/"), &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a rename elsewhere raced the lookup; try again
		}
		return fd, err
	}
}

// rootFD returns an O_PATH handle of the new root's top directory.
func (b *rootBuilder) rootFD() (int, error) {
	if b.rootOf != "" && b.rootOf == b.root {
		return b.rootFd, nil
	}
	b.dropRoot()
	fd, err := unix.Open(b.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	b.rootFd, b.rootOf = fd, b.root
	return fd, nil
}

// dropRoot forgets the root's handle: a mount onto the root itself (an
// image's overlay) hides the directory it holds.
func (b *rootBuilder) dropRoot() {
	if b.rootOf != "" {
		unix.Close(b.rootFd)
		b.rootOf = ""
	}
}

// hostFD returns an O_PATH handle of the host's / (before the pivot).
func (b *rootBuilder) hostFD() (int, error) {
	if b.haveHost {
		return b.hostFd, nil
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	b.hostFd, b.haveHost = fd, true
	return fd, nil
}

// release closes the handles, before the pivot: none of init's fds may
// hold the host's tree once it is detached.
func (b *rootBuilder) release() {
	b.dropRoot()
	if b.haveHost {
		unix.Close(b.hostFd)
		b.haveHost = false
	}
	if b.haveEmpty {
		unix.Close(b.emptyFd)
		b.haveEmpty = false
	}
	if b.haveScratch {
		unix.Close(b.scratchFd)
		b.haveScratch = false
	}
}
