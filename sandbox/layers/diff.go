package layers

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
)

// Diff lists the changes of the merged view against the lower, sorted by
// path. A directory added or deleted is listed with everything in it.
func (l *Layer) Diff() ([]Change, error) {
	d := &differ{l: l}
	root, err := l.readUpperDir("")
	if err != nil {
		return nil, fmt.Errorf("reading the upper layer: %w", err)
	}
	if err := d.dir("", root, !root.opaque); err != nil {
		return nil, err
	}
	sort.Slice(d.out, func(i, j int) bool { return d.out[i].Path < d.out[j].Path })
	return d.out, nil
}

type differ struct {
	l   *Layer
	out []Change
}

func (d *differ) emit(c Change) { d.out = append(d.out, c) }

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// dir compares the directory at rel. up is its upper directory (nil when
// the upper has none there); merge says whether the lower's entries show
// through (false beneath an opaque directory).
func (d *differ) dir(rel string, up *upperDir, merge bool) error {
	lower, err := d.l.lowerNames(rel)
	if err != nil {
		return err
	}
	inLower := map[string]bool{}
	for _, n := range lower {
		inLower[n] = true
	}
	all := append([]string(nil), lower...)
	if up != nil {
		for n := range up.entries {
			if !inLower[n] {
				all = append(all, n)
			}
		}
	}
	sort.Strings(all)
	for _, n := range all {
		p := join(rel, n)
		var old *Entry
		if inLower[n] {
			if old, err = lstatEntry(d.l.lowerPath(p)); err != nil {
				return err
			}
		}
		var nw *Entry
		hidden := false
		if up != nil {
			nw = up.entries[n]
			_, hidden = up.whiteouts[n]
		}
		switch {
		case nw != nil:
			if err := d.pair(p, old, nw, merge); err != nil {
				return err
			}
		case hidden || !merge:
			if old != nil {
				if err := d.deleted(p, old); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// pair compares a path the upper holds with what the lower has there.
func (d *differ) pair(p string, old, nw *Entry, merge bool) error {
	if old == nil {
		return d.added(p, nw)
	}
	if old.Type != nw.Type {
		d.emit(Change{Path: p, Kind: TypeChanged, Old: old, New: nw})
		if old.Type == TypeDir {
			if err := d.lowerTree(p, func(q string, e *Entry) { d.emit(Change{Path: q, Kind: Deleted, Old: e}) }); err != nil {
				return err
			}
		}
		if nw.Type == TypeDir {
			return d.upperTree(p, func(q string, e *Entry) { d.emit(Change{Path: q, Kind: Added, New: e}) })
		}
		return nil
	}
	switch nw.Type {
	case TypeDir:
		up, err := d.l.readUpperDir(p)
		if err != nil {
			return err
		}
		if x := !sameXattrs(d.l.lowerPath(p), d.l.upperPath(p)); old.Mode != nw.Mode || x {
			d.emit(Change{Path: p, Kind: ModeChanged, Old: old, New: nw, Opaque: up.opaque, Xattrs: x})
		}
		return d.dir(p, up, merge && !up.opaque)
	case TypeFile:
		same, err := sameContent(d.l.lowerPath(p), d.l.upperPath(p), old, nw)
		if err != nil {
			return err
		}
		x := !sameXattrs(d.l.lowerPath(p), d.l.upperPath(p))
		switch {
		case !same:
			d.emit(Change{Path: p, Kind: Modified, Old: old, New: nw, Xattrs: x})
		case old.Mode != nw.Mode || x:
			d.emit(Change{Path: p, Kind: ModeChanged, Old: old, New: nw, Xattrs: x})
		}
	case TypeSymlink:
		if old.Target != nw.Target {
			d.emit(Change{Path: p, Kind: Modified, Old: old, New: nw})
		}
	default:
		if old.Rdev != nw.Rdev {
			d.emit(Change{Path: p, Kind: Modified, Old: old, New: nw})
		} else if old.Mode != nw.Mode {
			d.emit(Change{Path: p, Kind: ModeChanged, Old: old, New: nw})
		}
	}
	return nil
}

func (d *differ) added(p string, nw *Entry) error {
	c := Change{Path: p, Kind: Added, New: nw}
	d.emit(c)
	if nw.Type == TypeDir {
		return d.upperTree(p, func(q string, e *Entry) { d.emit(Change{Path: q, Kind: Added, New: e}) })
	}
	return nil
}

func (d *differ) deleted(p string, old *Entry) error {
	d.emit(Change{Path: p, Kind: Deleted, Old: old})
	if old.Type == TypeDir {
		return d.lowerTree(p, func(q string, e *Entry) { d.emit(Change{Path: q, Kind: Deleted, Old: e}) })
	}
	return nil
}

// lowerTree calls fn for everything beneath the lower's directory p.
func (d *differ) lowerTree(p string, fn func(string, *Entry)) error {
	names, err := d.l.lowerNames(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		q := join(p, n)
		e, err := lstatEntry(d.l.lowerPath(q))
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		fn(q, e)
		if e.Type == TypeDir {
			if err := d.lowerTree(q, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// upperTree calls fn for everything the merged view shows beneath the
// upper's directory p, which no lower entry backs.
func (d *differ) upperTree(p string, fn func(string, *Entry)) error {
	up, err := d.l.readUpperDir(p)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(up.entries))
	for n := range up.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		q, e := join(p, n), up.entries[n]
		fn(q, e)
		if e.Type == TypeDir {
			if err := d.upperTree(q, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// sameContent compares two regular files byte for byte.
func sameContent(a, b string, ea, eb *Entry) (bool, error) {
	if ea.Size != eb.Size {
		return false, nil
	}
	if ea.Dev == eb.Dev && ea.Ino == eb.Ino {
		return true, nil
	}
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra == io.EOF || erra == io.ErrUnexpectedEOF {
			return errb == io.EOF || errb == io.ErrUnexpectedEOF, nil
		}
		if erra != nil {
			return false, erra
		}
		if errb != nil {
			return false, errb
		}
	}
}
