package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"golang.org/x/sys/unix"
)

// The sandbox's scratch space (/tmp, /var/tmp, the tmpfs home and
// filesystem.tmpfs paths) is one tmpfs of limits.tmpfs bytes, and each of
// those paths a directory of it bound in place: a per-mount size cannot
// make several mounts share one budget, one superblock can. The tmpfs is
// mounted beside the new root, in init's mount namespace only; once the
// root is pivoted and the old one detached, only the binds remain.

// sharedTmpfs binds a fresh directory of the scratch tmpfs at dst.
func (b *rootBuilder) sharedTmpfs(m model.Mount, dst string) error {
	if b.scratch == "" {
		dir := filepath.Join(filepath.Dir(b.root), "scratch")
		if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
		opts := "mode=0700"
		if b.scratchSize > 0 {
			opts += fmt.Sprintf(",size=%d", b.scratchSize)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", mutFlags("tmpfs", unix.MS_NOSUID|unix.MS_NODEV), opts); err != nil {
			return fmt.Errorf("mounting the scratch tmpfs: %w", err)
		}
		b.scratch = dir
	}
	b.n++
	src := filepath.Join(b.scratch, strconv.Itoa(b.n))
	if err := os.Mkdir(src, 0o700); err != nil {
		return err
	}
	// Mkdir's mode passes through the umask; the sticky bit not at all.
	if err := os.Chmod(src, os.FileMode(m.Mode&0o777)|modeBits(m.Mode)); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	attr := unix.MountAttr{Attr_set: mutAttr("tmpfs", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)}
	return unix.MountSetattr(unix.AT_FDCWD, dst, 0, &attr)
}

// modeBits turns the setuid, setgid and sticky bits of a Unix mode into
// Go's.
func modeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}
