package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// UnpackOptions says how ownership is applied.
type UnpackOptions struct {
	// Chown applies each entry's uid and gid (the caller is root of a user
	// namespace mapping them). False leaves everything owned by the caller.
	Chown bool
	// MappedUID and MappedGID report whether an id can be owned here; entries
	// whose ids are not mapped get owner 0 and are counted in OwnersSquashed.
	// Nil means every id is mapped. Only used when Chown is set.
	MappedUID, MappedGID func(uint32) bool
}

// UnpackStats counts what a layer held.
type UnpackStats struct {
	Files, Dirs, Symlinks, Hardlinks, FIFOs int
	Whiteouts, Opaques                      int
	DevicesSkipped                          int // char and block devices: cannot be made without privilege
	XattrsSkipped                           int // xattrs that could not or must not be set
	OwnersSquashed                          int
	Bytes                                   int64 // regular file contents
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	// Other ".wh..wh." names are AUFS bookkeeping (.wh..wh.plnk,
	// .wh..wh.aufs) that means nothing on overlay; Docker drops them too.
	reservedPrefix = ".wh..wh."

	xattrPAXPrefix = "SCHILY.xattr."

	// Every lookup beneath the layer directory refuses symlinks outright:
	// an earlier entry of a hostile layer may have planted one to redirect
	// a later write outside.
	resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
)

// opaqueXattrs mark a directory opaque for kernel overlayfs mounted with
// userxattr and for fuse-overlayfs.
var opaqueXattrs = []string{"user.overlay.opaque", "user.fuseoverlayfs.opaque"}

// errThroughSymlink reads as the tail of "layer entry %q passes through a
// symlink".
var errThroughSymlink = errors.New("passes through a symlink")

type unpacker struct {
	root  int // the layer directory, O_RDONLY so that its own xattrs can be set
	opts  UnpackOptions
	stats UnpackStats
	// dirs holds the directories whose metadata is applied at the end, by
	// cleaned path; a nil header is a parent the layer did not list.
	dirs map[string]*tar.Header
}

// Unpack extracts the tar stream r into dir, an existing empty directory.
//
// dir must be empty: a whiteout keeps what the same layer put at its name,
// since in OCI layers whiteouts only apply to lower layers, and Unpack
// assumes everything under dir came from this layer.
func Unpack(r io.Reader, dir string, opts UnpackOptions) (UnpackStats, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return UnpackStats{}, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	u := &unpacker{root: root, opts: opts, dirs: map[string]*tar.Header{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.stats, fmt.Errorf("reading layer: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			if errors.Is(err, errThroughSymlink) {
				return u.stats, fmt.Errorf("layer entry %q %w", hdr.Name, err)
			}
			return u.stats, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	err = u.finishDirs()
	return u.stats, err
}

// cleanName turns a tar name into a path relative to the layer root, "."
// for the root itself.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	n := path.Clean(strings.TrimLeft(name, "/"))
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("%q escapes the layer", name)
	}
	return n, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		u.stats.DevicesSkipped++
		return nil
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the layer root can only be a directory")
		}
		u.dirs["."] = hdr
		u.stats.Dirs++
		return nil
	}

	parent, base := path.Dir(name), path.Base(name)
	elems := strings.Split(name, "/")
	for _, e := range elems[:len(elems)-1] {
		if strings.HasPrefix(e, reservedPrefix) {
			return nil
		}
	}
	if base == opaqueMarker {
		return u.opaque(parent)
	}
	if strings.HasPrefix(base, reservedPrefix) {
		return nil
	}

	pfd, err := u.openDir(parent)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)

	if target, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if target == "" || target == "." || target == ".." {
			return fmt.Errorf("invalid whiteout name %q", base)
		}
		return u.whiteout(pfd, path.Join(parent, target), target)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.mkdir(pfd, name, base, hdr)
	case tar.TypeSymlink:
		return u.symlink(pfd, name, base, hdr)
	case tar.TypeLink:
		return u.hardlink(pfd, name, base, hdr)
	case tar.TypeFifo:
		return u.fifo(pfd, name, base, hdr)
	default:
		return u.file(pfd, name, base, hdr, r)
	}
}

// openat2 resolves p beneath fd, never through a symlink.
func openat2(fd int, p string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode), Resolve: resolveBeneath}
	for tries := 0; ; tries++ {
		nfd, err := unix.Openat2(fd, p, &how)
		switch {
		case err == nil:
			return nfd, nil
		// EAGAIN: a concurrent rename or mount anywhere on the system made
		// the kernel give up on proving the lookup stayed beneath.
		case (err == unix.EINTR || err == unix.EAGAIN) && tries < 32:
			continue
		case err == unix.ENOSYS:
			return -1, fmt.Errorf("openat2 is not available (Linux 5.6 or later is needed): %w", err)
		default:
			return -1, err
		}
	}
}

// openDir returns an O_PATH descriptor of the directory p beneath the
// root, creating the directories that are missing.
func (u *unpacker) openDir(p string) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
	fd, err := openat2(u.root, p, flags, 0)
	switch {
	case err == nil:
		return fd, nil
	case err == unix.ELOOP:
		return -1, errThroughSymlink
	case err != unix.ENOENT && err != unix.ENOTDIR:
		return -1, fmt.Errorf("opening directory %q: %w", p, err)
	}
	cur, err := openat2(u.root, ".", flags, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the layer root: %w", err)
	}
	done := "."
	for _, c := range strings.Split(p, "/") {
		done = path.Join(done, c)
		next, err := u.stepDir(cur, c, done)
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// stepDir opens the directory c in fd, creating it if missing.
func (u *unpacker) stepDir(fd int, c, p string) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
	for tries := 0; ; tries++ {
		next, err := openat2(fd, c, flags, 0)
		switch {
		case err == nil:
			return next, nil
		case err == unix.ELOOP:
			return -1, errThroughSymlink
		case tries > 0:
			return -1, fmt.Errorf("opening directory %q: %w", p, err)
		case err == unix.ENOENT:
			if err := unix.Mkdirat(fd, c, 0o700); err != nil {
				return -1, fmt.Errorf("creating directory %q: %w", p, err)
			}
			u.dirs[p] = nil
		case err == unix.ENOTDIR:
			// The layer whited out a lower directory and then put entries
			// beneath that name: the lower directory is replaced, which on
			// overlay is an opaque directory.
			var st unix.Stat_t
			if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || !isWhiteout(&st) {
				return -1, fmt.Errorf("%q is not a directory", p)
			}
			if err := u.replaceWhiteout(fd, c, p); err != nil {
				return -1, err
			}
			u.dirs[p] = nil
		default:
			return -1, fmt.Errorf("opening directory %q: %w", p, err)
		}
	}
}

// replaceWhiteout turns the whiteout c in fd into an opaque directory.
func (u *unpacker) replaceWhiteout(fd int, c, p string) error {
	if err := unix.Unlinkat(fd, c, 0); err != nil {
		return fmt.Errorf("removing whiteout %q: %w", p, err)
	}
	if err := unix.Mkdirat(fd, c, 0o700); err != nil {
		return fmt.Errorf("creating directory %q: %w", p, err)
	}
	return u.setOpaque(fd, c, p)
}

// isWhiteout reports whether st is an overlay whiteout. Unpack makes no
// other character devices.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func (u *unpacker) setOpaque(fd int, c, p string) error {
	dfd, err := openat2(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP {
			return errThroughSymlink
		}
		return fmt.Errorf("opening directory %q: %w", p, err)
	}
	defer unix.Close(dfd)
	for _, x := range opaqueXattrs {
		if err := unix.Fsetxattr(dfd, x, []byte("y"), 0); err != nil {
			return fmt.Errorf("marking directory %q opaque (xattr %s): %w", p, x, err)
		}
	}
	return nil
}

// opaque handles a .wh..wh..opq marker in directory dir.
func (u *unpacker) opaque(dir string) error {
	fd, err := u.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := u.setOpaque(fd, ".", dir); err != nil {
		return err
	}
	u.stats.Opaques++
	return nil
}

// whiteout handles .wh.NAME, with target NAME in pfd and p its path.
func (u *unpacker) whiteout(pfd int, p, target string) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, target, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == unix.ENOENT:
		// Linux 5.8 lets anyone make a 0/0 character device, for this.
		if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("creating whiteout %q (a character device 0/0): %w", p, err)
		}
	case err != nil:
		return fmt.Errorf("inspecting %q: %w", p, err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// Whiteouts hide only what lower layers hold: this layer's own
		// directory stays, and hides the lower one's contents.
		if err := u.setOpaque(pfd, target, p); err != nil {
			return err
		}
	default:
		// A non-directory of this layer already hides the lower one.
	}
	u.stats.Whiteouts++
	return nil
}

// Kinds of what prepare found at an entry's name.
const (
	foundNothing = iota
	foundDir
	foundWhiteout
	foundOther
)

// prepare clears the way for an entry at base in pfd: later entries
// override earlier ones. A directory stays if keepDir is set.
func (u *unpacker) prepare(pfd int, name, base string, keepDir bool) (int, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return foundNothing, nil
	}
	if err != nil {
		return 0, fmt.Errorf("inspecting %q: %w", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return foundDir, nil
		}
		if err := removeBeneath(pfd, base); err != nil {
			return 0, fmt.Errorf("removing directory %q: %w", name, err)
		}
		for d := range u.dirs {
			if d == name || strings.HasPrefix(d, name+"/") {
				delete(u.dirs, d)
			}
		}
		return foundDir, nil
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return 0, fmt.Errorf("removing %q: %w", name, err)
	}
	if isWhiteout(&st) {
		return foundWhiteout, nil
	}
	return foundOther, nil
}

// removeBeneath removes base in pfd and, if it is a directory, all it
// holds, never following a symlink.
func removeBeneath(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err != unix.EISDIR {
		return err
	}
	fd, err := openat2(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeBeneath(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
}

func (u *unpacker) mkdir(pfd int, name, base string, hdr *tar.Header) error {
	found, err := u.prepare(pfd, name, base, true)
	if err != nil {
		return err
	}
	if found != foundDir {
		// 0700 until the end, so that entries can be written into a
		// directory whose final mode forbids it.
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("creating directory: %w", err)
		}
		if found == foundWhiteout {
			if err := u.setOpaque(pfd, base, name); err != nil {
				return err
			}
		}
	}
	u.dirs[name] = hdr
	u.stats.Dirs++
	return nil
}

func (u *unpacker) file(pfd int, name, base string, hdr *tar.Header, r io.Reader) error {
	if _, err := u.prepare(pfd, name, base, false); err != nil {
		return err
	}
	fd, err := openat2(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	n, err := io.Copy(f, r)
	u.stats.Bytes += n
	if err != nil {
		f.Close()
		return fmt.Errorf("writing contents: %w", err)
	}
	if err := u.finish(fd, hdr); err != nil {
		f.Close()
		return err
	}
	// Some filesystems report a full disk only on close.
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing contents: %w", err)
	}
	u.stats.Files++
	return nil
}

func (u *unpacker) fifo(pfd int, name, base string, hdr *tar.Header) error {
	if _, err := u.prepare(pfd, name, base, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
		return fmt.Errorf("creating fifo: %w", err)
	}
	// O_NONBLOCK: opening a fifo for reading would wait for a writer.
	fd, err := openat2(pfd, base, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening fifo: %w", err)
	}
	defer unix.Close(fd)
	if err := u.finish(fd, hdr); err != nil {
		return err
	}
	u.stats.FIFOs++
	return nil
}

func (u *unpacker) symlink(pfd int, name, base string, hdr *tar.Header) error {
	if _, err := u.prepare(pfd, name, base, false); err != nil {
		return err
	}
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return fmt.Errorf("creating symlink to %q: %w", hdr.Linkname, err)
	}
	if u.opts.Chown {
		uid, gid := u.owner(hdr)
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting owner %d:%d: %w", uid, gid, err)
		}
	}
	// Linux has no xattrs in the user namespace on symlinks, and
	// security.capability means nothing there.
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPAXPrefix) {
			u.stats.XattrsSkipped++
		}
	}
	if ts, ok := times(hdr); ok {
		if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting modification time: %w", err)
		}
	}
	u.stats.Symlinks++
	return nil
}

func (u *unpacker) hardlink(pfd int, name, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("link target: %w", err)
	}
	if target == name {
		return errors.New("links to itself")
	}
	// O_NOFOLLOW|O_PATH opens a symlink itself, which may be hardlinked;
	// any symlink before the last element is still refused.
	tfd, err := openat2(u.root, target, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case err == unix.ELOOP:
		return fmt.Errorf("link target %q passes through a symlink", hdr.Linkname)
	case err == unix.ENOENT || err == unix.ENOTDIR:
		return fmt.Errorf("link target %q does not exist in the layer", hdr.Linkname)
	case err != nil:
		return fmt.Errorf("opening link target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstat(tfd, &st); err != nil {
		return fmt.Errorf("inspecting link target %q: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("link target %q is a directory", hdr.Linkname)
	}
	if _, err := u.prepare(pfd, name, base, false); err != nil {
		return err
	}
	// Linking the descriptor itself (AT_EMPTY_PATH) needs
	// CAP_DAC_READ_SEARCH; its /proc magic link does not.
	if err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(tfd), pfd, base, unix.AT_SYMLINK_FOLLOW); err != nil {
		return fmt.Errorf("linking to %q through /proc/self/fd: %w", hdr.Linkname, err)
	}
	u.stats.Hardlinks++
	return nil
}

// owner returns the ids hdr should be owned by here.
func (u *unpacker) owner(hdr *tar.Header) (uid, gid int) {
	squashed := false
	// A negative id would be -1 to chown, which means "leave as is".
	ok := func(id int, mapped func(uint32) bool) bool {
		return id >= 0 && id < math.MaxUint32 && (mapped == nil || mapped(uint32(id)))
	}
	uid, gid = hdr.Uid, hdr.Gid
	if !ok(uid, u.opts.MappedUID) {
		uid, squashed = 0, true
	}
	if !ok(gid, u.opts.MappedGID) {
		gid, squashed = 0, true
	}
	if squashed {
		u.stats.OwnersSquashed++
	}
	return uid, gid
}

// finish applies hdr's owner, mode, xattrs and times to fd, in that order:
// chown clears setuid and file capabilities, and everything else changes
// the ctime only.
func (u *unpacker) finish(fd int, hdr *tar.Header) error {
	if u.opts.Chown {
		uid, gid := u.owner(hdr)
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("setting owner %d:%d: %w", uid, gid, err)
		}
	}
	mode := uint32(hdr.Mode) & 0o7777
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("setting mode %#o: %w", mode, err)
	}
	if err := u.setXattrs(fd, hdr); err != nil {
		return err
	}
	if ts, ok := times(hdr); ok {
		if err := futimens(fd, &ts); err != nil {
			return fmt.Errorf("setting modification time: %w", err)
		}
	}
	return nil
}
