package layers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Three-way merges for apply --merge. The baseline (baseline.go) records
// only what each path looked like; to merge, hutch also keeps the content
// of each file the session modified, as the host had it when the session
// began: BaseStore, filled when a kept run ends.

// Merged is the outcome of a change merged with the host's own edit.
const Merged Outcome = "merged"

// BaseStore keeps the lower's content of modified files, one file per
// path, named by the path's hash (no directories to resolve).
type BaseStore struct{ Dir string }

func (s BaseStore) file(rel string) string {
	sum := sha256.Sum256([]byte(rel))
	return filepath.Join(s.Dir, hex.EncodeToString(sum[:16]))
}

// Get returns the content rel had as the session began, if kept.
func (s BaseStore) Get(rel string) ([]byte, bool) {
	data, err := os.ReadFile(s.file(rel))
	if err != nil {
		return nil, false
	}
	return data, true
}

// Drop forgets rel's content (it was applied: the baseline moved on).
func (s BaseStore) Drop(rel string) { os.Remove(s.file(rel)) }

// Keep records the host's content of each modified text file not kept
// yet, when the host file is still as the baseline recorded it (else its
// content as the session began is gone, and --merge cannot merge it).
// Host files are opened beneath target without following symlinks.
func (s BaseStore) Keep(target string, changes []Change, b *Baseline) error {
	if b == nil {
		return nil
	}
	var t *tree
	for _, c := range changes {
		if c.Kind != Modified || c.Old == nil || c.Old.Type != TypeFile || c.Old.Size > maxTextSize {
			continue
		}
		if _, err := os.Lstat(s.file(c.Path)); err == nil {
			continue
		}
		stamp, ok := b.Entries[c.Path]
		if !ok || stamp.Type != TypeFile {
			continue
		}
		if t == nil {
			var err error
			if t, err = openTree(target); err != nil {
				return err
			}
			defer t.close()
			if err := os.MkdirAll(s.Dir, 0o700); err != nil {
				return err
			}
		}
		if err := s.keepOne(t, c.Path, stamp); err != nil {
			return fmt.Errorf("keeping %s as the session began: %w", c.Path, err)
		}
	}
	return nil
}

func (s BaseStore) keepOne(t *tree, rel string, stamp Stamp) error {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return nil // gone or replaced: nothing to keep
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || !stamp.Same(stampOf(&st)) {
		return err // changed on the host already: its old content is gone
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTextSize+1))
	if err != nil {
		return err
	}
	// The host may have written meanwhile: keep only what the stamp vouches for.
	if err := unix.Fstat(fd, &st); err != nil || !stamp.Same(stampOf(&st)) {
		return err
	}
	tmp := s.file(rel) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.file(rel))
}

// MergeText merges theirs (the session's) into ours (the host's), both
// made from base, line by line as diff3 and git merge-file do. Where both
// changed the same lines differently, the result holds both between
// conflict markers; conflicts counts those places.
func MergeText(base, ours, theirs []byte, oursLabel, theirsLabel string) (merged []byte, conflicts int) {
	o, a, b := splitLines(base), splitLines(ours), splitLines(theirs)
	ma, mb := matches(o, a), matches(o, b)
	var out bytes.Buffer
	i, ja, jb := 0, 0, 0
	for {
		// Lines all three share, in step.
		for i < len(o) && ma[i] == ja && mb[i] == jb {
			out.WriteString(o[i])
			i, ja, jb = i+1, ja+1, jb+1
		}
		// The next base line both sides kept ends the changed region.
		i2 := i
		for i2 < len(o) && (ma[i2] < 0 || mb[i2] < 0) {
			i2++
		}
		ea, eb := len(a), len(b)
		if i2 < len(o) {
			ea, eb = ma[i2], mb[i2]
		}
		if i2 == i && ea == ja && eb == jb {
			break // nothing changed here: the end
		}
		oc, ac, bc := o[i:i2], a[ja:ea], b[jb:eb]
		switch {
		case equalLines(ac, oc):
			writeLines(&out, bc)
		case equalLines(bc, oc), equalLines(ac, bc):
			writeLines(&out, ac)
		default:
			conflicts++
			out.WriteString("<<<<<<< " + oursLabel + "\n")
			writeLinesNL(&out, ac)
			out.WriteString("=======\n")
			writeLinesNL(&out, bc)
			out.WriteString(">>>>>>> " + theirsLabel + "\n")
		}
		i, ja, jb = i2, ea, eb
	}
	return out.Bytes(), conflicts
}

// matches maps each line of o to the line of x it is kept as, or -1.
func matches(o, x []string) []int {
	m := make([]int, len(o))
	i, j := 0, 0
	for _, op := range lineDiff(o, x) {
		switch op.kind {
		case ' ':
			m[i] = j
			i, j = i+1, j+1
		case '-':
			m[i] = -1
			i++
		case '+':
			j++
		}
	}
	return m
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func writeLines(w *bytes.Buffer, ls []string) {
	for _, l := range ls {
		w.WriteString(l)
	}
}

// writeLinesNL writes lines between markers, each ending in a newline.
func writeLinesNL(w *bytes.Buffer, ls []string) {
	for _, l := range ls {
		w.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			w.WriteByte('\n')
		}
	}
}

// mergeable says why --merge cannot merge c over the host entry, or "".
func mergeable(c Change, host *unix.Stat_t, base Stamp, inBase bool) string {
	switch {
	case host == nil:
		return "deleted on the host since the session began"
	case host.Mode&unix.S_IFMT != unix.S_IFREG && inBase && base.Type == TypeFile:
		return "its type changed on the host since the session began"
	case c.Kind != Modified || c.New == nil || c.New.Type != TypeFile || c.Old == nil || c.Old.Type != TypeFile:
		return "only a modified file's content can be merged"
	case host.Mode&unix.S_IFMT != unix.S_IFREG || !inBase || base.Type != TypeFile:
		return "it was no file as the session began"
	}
	return ""
}

// merge writes the three-way merge of the host's file and the session's
// at pfd/base, the safe way a file is applied: written aside, synced,
// renamed over. It returns how many conflicts the result marks, or why it
// did not touch the file.
func (a *applier) merge(c Change, host *unix.Stat_t, pfd int, name string) (conflicts int, refusal string, err error) {
	base, inBase := a.opts.Baseline.Entries[c.Path]
	if why := mergeable(c, host, base, inBase); why != "" {
		return 0, why + "; --merge leaves it", nil
	}
	old, ok := a.opts.MergeBase(c.Path)
	if !ok {
		return 0, "changed on the host since the session began, and its content then was not kept; --merge leaves it", nil
	}
	ours, err := a.readAt(a.t, c.Path, host)
	if err != nil {
		return 0, "", err
	}
	theirs, err := a.readAt(a.up, c.Path, nil)
	if err != nil {
		return 0, "", fmt.Errorf("reading the session's copy: %w", err)
	}
	if ours == nil || theirs == nil || bytes.IndexByte(old, 0) >= 0 {
		return 0, "binary or too large to merge; --merge leaves it", nil
	}
	merged, n := MergeText(old, ours, theirs, "host", "session")
	mode := stripMode(host.Mode & 0o7777)
	err = replaceWith(pfd, name, func(tmp string) error {
		fd, err := unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), tmp)
		defer f.Close()
		if _, err := f.Write(merged); err != nil {
			return err
		}
		if err := unix.Fchmod(fd, mode); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		return f.Close()
	})
	return n, "", err
}

// readAt reads a regular text file beneath t without following symlinks;
// nil when it is binary or too large. want, when set, is the stat the
// file must still have (the host's, checked for conflicts).
func (a *applier) readAt(t *tree, rel string, want *unix.Stat_t) ([]byte, error) {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("not a regular file")
	}
	if want != nil && (st.Ino != want.Ino || st.Dev != want.Dev) {
		return nil, errors.New("replaced on the host while merging")
	}
	if st.Size > maxTextSize {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTextSize+1))
	if err != nil || len(data) > maxTextSize || bytes.IndexByte(data, 0) >= 0 {
		return nil, err
	}
	return data, nil
}

// DropUpper removes the session's copies of merged files: the host holds
// the merge now, and the lower shows through.
func (l *Layer) DropUpper(paths []string) error {
	up, err := openTree(l.Upper)
	if err != nil {
		return err
	}
	defer up.close()
	for _, p := range paths {
		pfd, name, err := up.parent(p)
		if err != nil {
			return err
		}
		err = unix.Unlinkat(pfd, name, 0)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

// mergeOne merges a change that conflicts with the host's edit.
func (a *applier) mergeOne(c Change, host *unix.Stat_t) (Outcome, string, error) {
	pfd, name, err := a.t.parent(c.Path)
	if err != nil {
		return Conflict, "a directory above it on the host changed since the session began; --merge leaves it", nil
	}
	defer unix.Close(pfd)
	n, why, err := a.merge(c, host, pfd, name)
	if err != nil {
		return Failed, "", err
	}
	if why != "" {
		return Conflict, why, nil
	}
	a.markDir(filepath.Dir(c.Path))
	a.restamp(pfd, name, c.Path)
	if n == 0 {
		return Merged, "", nil
	}
	a.rep.Marked = append(a.rep.Marked, c.Path)
	return Merged, fmt.Sprintf("%d %s marked in the file between <<<<<<< host and >>>>>>> session", n, map[bool]string{true: "conflict", false: "conflicts"}[n == 1]), nil
}
