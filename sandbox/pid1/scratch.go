package pid1

import (
	"fmt"
	"strconv"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"golang.org/x/sys/unix"
)

// The sandbox's scratch space (/tmp, /var/tmp, the tmpfs home and
// filesystem.tmpfs paths) is one tmpfs of limits.tmpfs bytes, and each of
// those paths a directory of it bound in place: a per-mount size cannot
// make several mounts share one budget, one superblock can. The tmpfs is
// never attached anywhere: fsmount's detached mount, held by init while
// it builds the root (release closes it), from which each directory is
// cloned onto its place; only those binds remain. (A mount point for it
// beside the root was a directory made and removed in the run directory,
// on the runtime directory's disk, at every run.)

// sharedTmpfs binds a fresh directory of the scratch tmpfs onto the handle
// target, the mount point of m.Dst.
func (b *rootBuilder) sharedTmpfs(m model.Mount, target int) error {
	attr := mutAttr("tmpfs", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if !b.haveScratch {
		opts := map[string]string{"source": "tmpfs", "mode": "0700"}
		if b.scratchSize > 0 {
			opts["size"] = strconv.FormatInt(b.scratchSize, 10)
		}
		fd, err := detachedTmpfs(opts, attr)
		if err != nil {
			return fmt.Errorf("mounting the scratch tmpfs: %w", err)
		}
		b.scratchFd, b.haveScratch = fd, true
	}
	b.n++
	name := strconv.Itoa(b.n)
	if err := unix.Mkdirat(b.scratchFd, name, 0o700); err != nil {
		return err
	}
	// Mkdir's mode passes through the umask; chmod's does not, and sets
	// the sticky bit too.
	if err := unix.Fchmodat(b.scratchFd, name, m.Mode&0o7777, 0); err != nil {
		return err
	}
	src, err := unix.Openat(b.scratchFd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	mfd, err := bindFd(src, target, false, attr)
	if err != nil {
		return err
	}
	return unix.Close(mfd)
}
