// Package layers reads, compares and applies the upper layers of hutch's
// overlays. It is pure file-system logic, with no namespaces: hutch runs it
// directly, or inside a user namespace with the session's id map when the
// upper layer holds files owned by subordinate ids (sandbox does that).
//
// # Upper-layer formats
//
// Both overlay drivers write their changes to an upper directory, in two
// dialects that one reader handles ([Format]):
//
//   - a deleted entry is a 0:0 character device of the same name (both
//     drivers); fuse-overlayfs falls back to an empty file ".wh.NAME" when it
//     cannot make the device;
//   - an opaque directory (one whose lower contents are all hidden) carries
//     the xattr user.overlay.opaque=y (the kernel's overlay mounted with
//     userxattr), or user.fuseoverlayfs.opaque=y and a file ".wh..wh..opq"
//     (fuse-overlayfs, which marks every directory it creates opaque);
//   - xattrs under user.overlay. and user.fuseoverlayfs. are the drivers'
//     bookkeeping, never the user's.
//
// ".wh." names mean something only to fuse-overlayfs: in a kernel session a
// file named ".wh.x" is just a file.
//
// # Changes
//
// [Layer.Diff] compares the merged view (the upper over the lower) with the
// lower as it is now and lists [Change]s: added, modified, deleted,
// type-changed and mode-changed paths. A file copied up but left as it was
// (touched, or opened for writing) is no change.
//
// [Layer.Apply] makes selected changes on the host, beneath the target
// root with no symlink followed, each file replaced atomically, set-id bits
// stripped, and refuses those whose host path changed since a [Baseline]
// was taken. Applied changes then leave the upper layer ([Layer.Prune]).
package layers

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Format is the dialect of an upper directory.
type Format int

const (
	// FormatKernel is the kernel overlay's, mounted with userxattr.
	FormatKernel Format = iota
	// FormatFuse is fuse-overlayfs's.
	FormatFuse
)

// ParseFormat maps a driver name ("kernel", "fuse") to its format.
func ParseFormat(driver string) (Format, error) {
	switch driver {
	case "kernel":
		return FormatKernel, nil
	case "fuse":
		return FormatFuse, nil
	}
	return 0, fmt.Errorf("unknown overlay driver %q", driver)
}

func (f Format) String() string {
	if f == FormatFuse {
		return "fuse"
	}
	return "kernel"
}

// Names the drivers use in an upper directory.
const (
	whPrefix     = ".wh."
	fuseOpaque   = ".wh..wh..opq" // fuse-overlayfs's opaque marker file
	fuseOpqWh    = ".wh..opq"     // a whiteout fuse-overlayfs makes beside it
	xattrKOpaque = "user.overlay.opaque"
	xattrFOpaque = "user.fuseoverlayfs.opaque"
	xattrTOpaque = "trusted.overlay.opaque" // a privileged kernel overlay's
)

// internalXattr reports whether an xattr is a driver's bookkeeping.
func internalXattr(name string) bool {
	return strings.HasPrefix(name, "user.overlay.") || strings.HasPrefix(name, "user.fuseoverlayfs.") ||
		strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.containers.")
}

// Type is the kind of file an entry is.
type Type string

const (
	TypeFile    Type = "file"
	TypeDir     Type = "dir"
	TypeSymlink Type = "symlink"
	TypeFifo    Type = "fifo"
	TypeSocket  Type = "socket"
	TypeChar    Type = "char"
	TypeBlock   Type = "block"
)

// Entry is what one path is, in the lower or the upper layer.
type Entry struct {
	Type Type `json:"type"`
	// Mode is the permission bits with set-id and sticky (07777).
	Mode   uint32 `json:"mode"`
	Size   int64  `json:"size"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Mtime  int64  `json:"mtime_ns"`
	Target string `json:"target,omitempty"` // a symlink's

	Rdev  uint64 `json:"-"`
	Dev   uint64 `json:"-"`
	Ino   uint64 `json:"-"`
	Nlink uint64 `json:"-"`
}

func typeOf(mode uint32) Type {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return TypeDir
	case unix.S_IFLNK:
		return TypeSymlink
	case unix.S_IFIFO:
		return TypeFifo
	case unix.S_IFSOCK:
		return TypeSocket
	case unix.S_IFCHR:
		return TypeChar
	case unix.S_IFBLK:
		return TypeBlock
	}
	return TypeFile
}

func entryOf(st *unix.Stat_t) *Entry {
	return &Entry{
		Type: typeOf(st.Mode), Mode: st.Mode & 0o7777, Size: st.Size, UID: st.Uid, GID: st.Gid,
		Mtime: st.Mtim.Nano(), Rdev: st.Rdev, Dev: st.Dev, Ino: st.Ino, Nlink: uint64(st.Nlink),
	}
}

// lstatEntry reads p without following a symlink; nil when p is missing.
func lstatEntry(p string) (*Entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	e := entryOf(&st)
	if e.Type == TypeSymlink {
		t, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		e.Target = t
	}
	return e, nil
}

// isWhiteoutDev reports whether e is a whiteout device (char 0:0).
func isWhiteoutDev(e *Entry) bool { return e.Type == TypeChar && e.Rdev == 0 }

// Kind is what happened to a path.
type Kind string

const (
	Added       Kind = "added"
	Modified    Kind = "modified"
	Deleted     Kind = "deleted"
	TypeChanged Kind = "type-changed"
	ModeChanged Kind = "mode-changed"
)

// Change is one changed path. Path is slash-separated and relative to the
// layer's root. Old is the lower's entry, New the merged view's.
type Change struct {
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	Old  *Entry `json:"old,omitempty"`
	New  *Entry `json:"new,omitempty"`
	// Opaque marks a directory whose lower contents the upper replaced.
	Opaque bool `json:"opaque,omitempty"`
	// Xattrs marks a change of user xattrs (alone, it is "mode-changed":
	// the metadata changed, not the content).
	Xattrs bool `json:"xattrs,omitempty"`
	// Binary is set by Stat for files that are not text.
	Binary bool `json:"binary,omitempty"`
	// Insertions and Deletions are line counts, set by Stat.
	Insertions int `json:"insertions,omitempty"`
	Deletions  int `json:"deletions,omitempty"`
	// RunsLater says why the host may run this path later (runlater.go),
	// set by MarkRunsLater for a project's changes.
	RunsLater string `json:"runs_later,omitempty"`
}

// Counts sums changes by kind.
type Counts struct {
	Added       int `json:"added"`
	Modified    int `json:"modified"`
	Deleted     int `json:"deleted"`
	TypeChanged int `json:"type_changed"`
	ModeChanged int `json:"mode_changed"`
}

// Count sums changes.
func Count(changes []Change) Counts {
	var c Counts
	for _, ch := range changes {
		switch ch.Kind {
		case Added:
			c.Added++
		case Modified:
			c.Modified++
		case Deleted:
			c.Deleted++
		case TypeChanged:
			c.TypeChanged++
		case ModeChanged:
			c.ModeChanged++
		}
	}
	return c
}

// Total is the number of changes.
func (c Counts) Total() int {
	return c.Added + c.Modified + c.Deleted + c.TypeChanged + c.ModeChanged
}

// String is "3 added, 2 modified, 1 deleted", leaving out zeros; "no
// changes" when there are none.
func (c Counts) String() string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{c.Added, "added"}, {c.Modified, "modified"}, {c.Deleted, "deleted"}, {c.TypeChanged, "type-changed"}, {c.ModeChanged, "mode-changed"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

// Layer is one overlay's pair of trees on the host.
type Layer struct {
	Lower string // the host directory the overlay shows
	// Lowers, when set, are several lower directories, top first (an
	// image's layers): the lower is then their merged view, with overlay
	// whiteouts (devices 0/0) and opaque directories honoured.
	Lowers []string
	Upper  string // the driver's upper directory
	Format Format
}

// upperDir is one directory of the upper layer, decoded.
type upperDir struct {
	opaque    bool
	entries   map[string]*Entry // real entries, by name
	whiteouts map[string]string // hidden name → the upper name that hides it
	markers   []string          // fuse-overlayfs's own files (opaque markers)
}

func (l *Layer) upperPath(rel string) string { return filepath.Join(l.Upper, filepath.FromSlash(rel)) }

// lowerPath is where the lower holds rel; with several lowers, the
// topmost one that shows it, or "" when none does.
func (l *Layer) lowerPath(rel string) string {
	if len(l.Lowers) == 0 {
		return filepath.Join(l.Lower, filepath.FromSlash(rel))
	}
	for _, lw := range l.Lowers {
		p, below := lowerLookup(lw, rel)
		if p != "" || !below {
			return p
		}
	}
	return ""
}

// lowerLookup looks rel up in one of several lowers: its path there ("" when
// absent or whited out), and whether the lowers below may still show it (or,
// for a directory, merge into it): not past a whiteout, a non-directory on
// the way, or an opaque directory.
func lowerLookup(lower, rel string) (path string, below bool) {
	cur := lower
	var parts []string
	if rel != "" {
		parts = strings.Split(filepath.FromSlash(rel), string(filepath.Separator))
	}
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		e, _ := lstatEntry(cur)
		if e == nil {
			return "", true
		}
		if isWhiteoutDev(e) {
			return "", false
		}
		if i == len(parts)-1 {
			return cur, e.Type == TypeDir && !lowerOpaque(cur)
		}
		if e.Type != TypeDir {
			return "", false
		}
		if lowerOpaque(cur) {
			// Beneath an opaque directory, rel is here or nowhere.
			rest := filepath.Join(append([]string{cur}, parts[i+1:]...)...)
			if e, _ := lstatEntry(rest); e != nil && !isWhiteoutDev(e) {
				return rest, false
			}
			return "", false
		}
	}
	return cur, !lowerOpaque(cur)
}

// lowerOpaque reports whether an image layer marks dir opaque.
func lowerOpaque(dir string) bool {
	return xattrIs(dir, xattrKOpaque, "y") || xattrIs(dir, xattrFOpaque, "y") || xattrIs(dir, xattrTOpaque, "y")
}

// readUpperDir decodes the upper directory at rel.
func (l *Layer) readUpperDir(rel string) (*upperDir, error) {
	dir := l.upperPath(rel)
	names, err := readNames(dir)
	if err != nil {
		return nil, err
	}
	u := &upperDir{entries: map[string]*Entry{}, whiteouts: map[string]string{}}
	u.opaque = xattrIs(dir, xattrKOpaque, "y") || xattrIs(dir, xattrTOpaque, "y")
	if l.Format == FormatFuse && xattrIs(dir, xattrFOpaque, "y") {
		u.opaque = true
	}
	for _, name := range names {
		e, err := lstatEntry(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue // gone meanwhile
		}
		if l.Format == FormatFuse && strings.HasPrefix(name, whPrefix) {
			switch name {
			case fuseOpaque:
				u.opaque = true
				u.markers = append(u.markers, name)
			case fuseOpqWh:
				u.markers = append(u.markers, name)
			default:
				u.whiteouts[strings.TrimPrefix(name, whPrefix)] = name
			}
			continue
		}
		if isWhiteoutDev(e) {
			u.whiteouts[name] = name
			continue
		}
		u.entries[name] = e
	}
	return u, nil
}

// empty reports whether the directory holds nothing the merged view shows.
func (u *upperDir) empty() bool { return len(u.entries) == 0 && len(u.whiteouts) == 0 }

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func xattrIs(p, name, want string) bool {
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(p, name, buf)
	return err == nil && string(buf[:n]) == want
}

// lowerNames lists the lower's directory at rel; nil when it is not a
// directory.
func (l *Layer) lowerNames(rel string) ([]string, error) {
	if len(l.Lowers) > 0 {
		return l.mergedNames(rel)
	}
	names, err := readNames(l.lowerPath(rel))
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, err
	}
	return names, nil
}

// mergedNames lists the directory rel as several lowers show it together;
// nil when it is not a directory there.
func (l *Layer) mergedNames(rel string) ([]string, error) {
	seen := map[string]bool{} // shown or hidden: decided by a lower above
	var out []string
	for _, lw := range l.Lowers {
		dir, below := lowerLookup(lw, rel)
		if dir != "" {
			e, err := lstatEntry(dir)
			if err != nil {
				return nil, err
			}
			if e == nil || e.Type != TypeDir {
				break // a non-directory here hides the directories below
			}
			names, err := readNames(dir)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if seen[n] {
					continue
				}
				seen[n] = true
				if c, _ := lstatEntry(filepath.Join(dir, n)); c != nil && isWhiteoutDev(c) {
					continue
				}
				out = append(out, n)
			}
		}
		if !below {
			break
		}
	}
	sort.Strings(out)
	return out, nil
}

// Select keeps the changes at or beneath the given paths (relative to the
// layer, slash-separated); no paths keeps everything.
func Select(changes []Change, paths []string) []Change {
	if len(paths) == 0 {
		return changes
	}
	var out []Change
	for _, c := range changes {
		if Selected(c.Path, paths) {
			out = append(out, c)
		}
	}
	return out
}

// Selected reports whether p is one of paths or beneath one.
func Selected(p string, paths []string) bool {
	if len(paths) == 0 {
		return true
	}
	for _, s := range paths {
		if s == "" || s == "." || p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// CleanPath turns a user's path (relative to the layer's root, or absolute
// beneath root) into a selection path; ok is false when it lies outside.
func CleanPath(root, cwd, p string) (string, bool) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(cwd, p)
	}
	p = filepath.Clean(p)
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	if rel == "." {
		return "", true
	}
	return path.Clean(filepath.ToSlash(rel)), true
}

// UserXattrs returns p's user.* xattrs that are not a driver's.
func UserXattrs(p string) (map[string][]byte, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ERANGE) {
		sz, err2 := unix.Llistxattr(p, nil)
		if err2 != nil {
			return nil, err2
		}
		buf = make([]byte, sz)
		n, err = unix.Llistxattr(p, buf)
	}
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	var out map[string][]byte
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || !strings.HasPrefix(name, "user.") || internalXattr(name) {
			continue
		}
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue
		}
		v := make([]byte, sz)
		if sz, err = unix.Lgetxattr(p, name, v); err != nil {
			continue
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = v[:sz]
	}
	return out, nil
}

// Touched returns whether the session changed a path: it, or a directory
// above it that the upper layer replaced, deleted or made opaque, is in the
// upper layer. Everything else in the merged view is the lower's.
func (l *Layer) Touched() (func(rel string) bool, error) {
	own := map[string]bool{}    // paths the upper holds or hides
	covers := map[string]bool{} // ... and whose whole subtree it decides
	var walk func(rel string) error
	walk = func(rel string) error {
		up, err := l.readUpperDir(rel)
		if err != nil {
			return err
		}
		if up.opaque && rel != "" {
			covers[rel] = true
		}
		for n := range up.whiteouts {
			own[join(rel, n)], covers[join(rel, n)] = true, true
		}
		for n, e := range up.entries {
			p := join(rel, n)
			own[p] = true
			if e.Type != TypeDir {
				covers[p] = true
				continue
			}
			if err := walk(p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return func(rel string) bool {
		if own[rel] {
			return true
		}
		for p := rel; ; {
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				return false
			}
			p = p[:i]
			if covers[p] {
				return true
			}
		}
	}, nil
}
