package image

import (
	"archive/tar"
	"fmt"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xattrAllowed reports whether a layer may set xattr name. Overlay keeps
// its own metadata (opaque markers, redirects, metacopy) in user.overlay.*
// and user.fuseoverlayfs.* (trusted.* when privileged): a layer that set
// them could make a lower directory show files of another.
func xattrAllowed(name string) bool {
	switch {
	case strings.HasPrefix(name, "user.overlay."), strings.HasPrefix(name, "user.fuseoverlayfs."):
		return false
	case strings.HasPrefix(name, "user."):
		return true
	}
	return name == "security.capability"
}

func (u *unpacker) setXattrs(fd int, hdr *tar.Header) error {
	var names []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPAXPrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		name := strings.TrimPrefix(k, xattrPAXPrefix)
		if !xattrAllowed(name) {
			u.stats.XattrsSkipped++
			continue
		}
		err := unix.Fsetxattr(fd, name, []byte(hdr.PAXRecords[k]), 0)
		switch err {
		case nil:
		// Not supported by the filesystem, not permitted (security.capability
		// without CAP_SETFCAP, user.* on a fifo), or a malformed value: the
		// layer still works without it.
		case unix.ENOTSUP, unix.EPERM, unix.EACCES, unix.EINVAL, unix.E2BIG, unix.ERANGE:
			u.stats.XattrsSkipped++
		default:
			return fmt.Errorf("setting xattr %q: %w", name, err)
		}
	}
	return nil
}

// times returns hdr's access and modification times for utimensat.
func times(hdr *tar.Header) ([2]unix.Timespec, bool) {
	if hdr.ModTime.IsZero() {
		return [2]unix.Timespec{}, false
	}
	m, err := unix.TimeToTimespec(hdr.ModTime)
	if err != nil {
		return [2]unix.Timespec{}, false
	}
	a := m
	if !hdr.AccessTime.IsZero() {
		if t, err := unix.TimeToTimespec(hdr.AccessTime); err == nil {
			a = t
		}
	}
	return [2]unix.Timespec{a, m}, true
}

// futimens is utimensat(fd, NULL, ts, 0): x/sys/unix only offers
// microseconds on a descriptor, through /proc.
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// finishDirs applies the directories' metadata, deepest first: a parent's
// final mode may forbid entering it, and a change inside would bump its
// modification time.
func (u *unpacker) finishDirs() error {
	names := make([]string, 0, len(u.dirs))
	for d := range u.dirs {
		names = append(names, d)
	}
	depth := func(p string) int {
		if p == "." {
			return 0
		}
		return strings.Count(p, "/") + 1
	}
	sort.Slice(names, func(i, j int) bool {
		if di, dj := depth(names[i]), depth(names[j]); di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	for _, d := range names {
		hdr := u.dirs[d]
		var what string
		if hdr != nil {
			what = fmt.Sprintf("layer entry %q", hdr.Name)
		} else {
			// A parent the layer did not list: owned by root, as in
			// docker and containerd.
			hdr = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
			what = fmt.Sprintf("directory %q", d)
		}
		fd, err := openat2(u.root, d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: opening directory: %w", what, err)
		}
		err = u.finish(fd, hdr)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}
