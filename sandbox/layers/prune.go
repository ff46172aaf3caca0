package layers

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Prune removes from the upper layer what the lower now holds anyway, at
// or beneath paths (all when none): files identical to the lower's,
// whiteouts of names the lower no longer has, opaque marks that hide
// nothing, and directories left empty. The merged view stays the same (but
// for set-id bits, which apply strips and Prune ignores), so
// Prune is safe at any time the overlay is not mounted; after an apply it
// is how applied changes leave the session.
func (l *Layer) Prune(paths []string) error {
	root, err := l.readUpperDir("")
	if err != nil {
		return err
	}
	return l.prune("", root, true, paths)
}

// onPath reports whether p is selected or an ancestor of a selection.
func onPath(p string, paths []string) bool {
	if Selected(p, paths) {
		return true
	}
	for _, s := range paths {
		if strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}

// prune works on the upper directory rel; parentMerges says whether the
// lower shows through rel's parent.
func (l *Layer) prune(rel string, up *upperDir, parentMerges bool, paths []string) error {
	lowerNames, err := l.lowerNames(rel)
	if err != nil {
		return err
	}
	inLower := map[string]bool{}
	for _, n := range lowerNames {
		inLower[n] = true
	}
	merges := parentMerges && !up.opaque
	if parentMerges && up.opaque {
		// The mark hides nothing once every lower name has an upper entry
		// (lower directories beneath then need the mark themselves), and
		// dropping it changes nothing: whatever was selected.
		hides := false
		for _, n := range lowerNames {
			if up.entries[n] == nil {
				hides = true
				break
			}
		}
		if !hides {
			for _, n := range lowerNames {
				if e := up.entries[n]; e.Type == TypeDir {
					if le, _ := lstatEntry(l.lowerPath(join(rel, n))); le != nil && le.Type == TypeDir {
						if err := l.setOpaque(join(rel, n)); err != nil {
							return err
						}
					}
				}
			}
			if err := l.clearOpaque(rel, up); err != nil {
				return err
			}
			up.opaque, merges = false, true
		}
	}
	for name, file := range up.whiteouts {
		p := join(rel, name)
		if !inLower[name] && Selected(p, paths) {
			if err := os.Remove(l.upperPath(join(rel, file))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			delete(up.whiteouts, name)
		}
	}
	for name, e := range up.entries {
		p := join(rel, name)
		if !onPath(p, paths) {
			continue
		}
		var le *Entry
		if inLower[name] {
			if le, err = lstatEntry(l.lowerPath(p)); err != nil {
				return err
			}
		}
		if e.Type == TypeDir {
			child, err := l.readUpperDir(p)
			if err != nil {
				return err
			}
			if err := l.prune(p, child, merges, paths); err != nil {
				return err
			}
			// Dropping an empty directory the lower has alike changes
			// nothing either: do it on the way to the selected paths too.
			if merges && child.empty() && !child.opaque && le != nil && le.Type == TypeDir &&
				le.Mode == e.Mode && sameXattrs(l.lowerPath(p), l.upperPath(p)) {
				for _, m := range child.markers {
					os.Remove(filepath.Join(l.upperPath(p), m))
				}
				if err := os.Remove(l.upperPath(p)); err != nil {
					return err
				}
				delete(up.entries, name)
			}
			continue
		}
		// Set-id bits, which apply strips, do not count.
		if !merges || !Selected(p, paths) || le == nil || le.Type != e.Type || le.Mode != stripMode(e.Mode) {
			continue
		}
		same := false
		switch e.Type {
		case TypeFile:
			same, err = sameContent(l.lowerPath(p), l.upperPath(p), le, e)
			if err != nil {
				return err
			}
		case TypeSymlink:
			same = le.Target == e.Target
		case TypeFifo:
			same = true
		}
		if same && sameXattrs(l.lowerPath(p), l.upperPath(p)) {
			if err := os.Remove(l.upperPath(p)); err != nil {
				return err
			}
			delete(up.entries, name)
		}
	}
	return nil
}

func sameXattrs(a, b string) bool {
	xa, err1 := UserXattrs(a)
	xb, err2 := UserXattrs(b)
	if err1 != nil || err2 != nil || len(xa) != len(xb) {
		return err1 == nil && err2 == nil && len(xa) == len(xb)
	}
	for k, v := range xa {
		if w, ok := xb[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// setOpaque marks the upper directory rel opaque, in the layer's dialect.
func (l *Layer) setOpaque(rel string) error {
	p := l.upperPath(rel)
	if l.Format == FormatFuse {
		if err := unix.Lsetxattr(p, xattrFOpaque, []byte("y"), 0); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(p, fuseOpaque), os.O_CREATE|os.O_WRONLY, 0o700)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return unix.Lsetxattr(p, xattrKOpaque, []byte("y"), 0)
}

// clearOpaque drops the opaque mark of the upper directory rel.
func (l *Layer) clearOpaque(rel string, up *upperDir) error {
	p := l.upperPath(rel)
	for _, x := range []string{xattrKOpaque, xattrFOpaque, xattrTOpaque} {
		if err := unix.Lremovexattr(p, x); err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return err
		}
	}
	for _, m := range up.markers {
		if err := os.Remove(filepath.Join(p, m)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	up.markers = nil
	return nil
}
