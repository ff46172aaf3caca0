package layers

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// tree is a directory whose paths are resolved beneath it, never through a
// symlink: openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS.
type tree struct{ fd int }

func openTree(dir string) (*tree, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &tree{fd: fd}, nil
}

func (t *tree) close() { unix.Close(t.fd) }

const resolveSafe = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// resolveFlags is resolveSafe, except under the mutation "apply-follow"
// (internal/mutate), which follows symlinks as a naive apply would.
func resolveFlags() uint64 {
	if mutate.Off("apply-follow") {
		return 0
	}
	return resolveSafe
}

func checkRel(rel string) error {
	if rel == "" || path.IsAbs(rel) {
		return fmt.Errorf("bad path %q", rel)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("bad path %q", rel)
		}
	}
	return nil
}

// open opens rel beneath the tree ("." for its root).
func (t *tree) open(rel string, flags int) (int, error) {
	if rel == "." || rel == "" {
		rel = "."
	} else if err := checkRel(rel); err != nil {
		return -1, err
	}
	for {
		fd, err := unix.Openat2(t.fd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags()})
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// parent opens rel's directory (as O_PATH) and returns it with rel's name.
func (t *tree) parent(rel string) (int, string, error) {
	if err := checkRel(rel); err != nil {
		return -1, "", err
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	fd, err := t.open(dir, unix.O_PATH|unix.O_DIRECTORY)
	return fd, base, err
}

// lstat reads rel without following it; nil when it is missing.
func (t *tree) lstat(rel string) (*unix.Stat_t, error) {
	pfd, base, err := t.parent(rel)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, err
	}
	return &st, nil
}

// changedBeneath returns the first path beneath the directory rel that is
// not as the baseline recorded it (added, or changed), or "".
func (t *tree) changedBeneath(rel string, b *Baseline) (string, error) {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		p := rel + "/" + n
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if s, ok := b.Entries[p]; !ok || !s.Same(stampOf(&st)) {
			return p, nil
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if q, err := t.changedBeneath(p, b); err != nil || q != "" {
				return q, err
			}
		}
	}
	return "", nil
}

// fdUserXattrs lists an open file's user xattrs that are not a driver's.
func fdUserXattrs(fd int) (map[string]bool, error) {
	sz, err := unix.Flistxattr(fd, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, sz)
	n, err := unix.Flistxattr(fd, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if strings.HasPrefix(name, "user.") && !internalXattr(name) {
			out[name] = true
		}
	}
	return out, nil
}
