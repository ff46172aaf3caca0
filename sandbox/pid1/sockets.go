package pid1

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/paths"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"golang.org/x/sys/unix"
)

// Host sockets inside binds (docs/security.md, "Host sockets inside a
// bound project"). The kernel finds a pathname unix socket by its inode,
// across mount and network namespaces, and a read-only mount does not stop
// connect(): a socket a host program made under the project (an agent, a
// database, a language server) would connect the command to that
// program. Landlock (ABI 7 here) scopes abstract sockets but not
// pathname ones, so hutch covers each such socket with an empty file
// before the command starts; connect() then gets ECONNREFUSED, as it does
// through an overlay (whose inodes are not the socket's). It finds them two
// ways, both cheap:
//
//   - the supervisor reads /proc/net/unix, which lists every pathname
//     socket bound in the caller's network namespace, at any depth, by the
//     path it was bound at (hostListeners, run while hutch-init starts);
//   - init lists the top of every user bind (the bind itself and its
//     subdirectories, within the bounds of socketScanDirs and
//     socketScanBytes), which
//     finds sockets bound by relative paths, renamed, or made in another
//     network namespace (a container's) where they sit in practice.
//
// filesystem.sockets names host sockets to leave reachable (a widening).
// What neither finds stays reachable: a socket made after the start, or
// deeper than the scan under a name other than its listener's.

// socketScanDirs and socketScanBytes bound init's scan: directories
// listed per run, and bytes of directory entries read from each (the top
// of a bind gets eight times as much). Listing a directory costs about a
// millisecond per thousand entries here (node_modules), so a large one is
// only partly listed.
const (
	socketScanDirs  = 64
	socketScanBytes = 4 << 10
)

// scansSockets reports whether init looks for sockets under the bind m:
// the project and user binds; not the system directories (read-only,
// root's), nor device nodes.
func scansSockets(m model.Mount) bool {
	if m.Dev || m.Src == "/sys" {
		return false
	}
	for _, d := range paths.SystemDirs {
		if m.Src == "/"+d && m.Dst == m.Src {
			return false
		}
	}
	return true
}

// maskSockets covers the sockets under the bind m (src is the source's
// handle, mnt the mounted tree's) with an empty file, unless
// filesystem.sockets allows them.
func (b *rootBuilder) maskSockets(m model.Mount, src, mnt int) error {
	if !scansSockets(m) {
		return nil
	}
	var srcPaths []string // m.Src, and its real path when that differs
	if len(b.listeners) > 0 || len(b.allowSockets) > 0 {
		srcPaths = append(srcPaths, m.Src)
		if real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", src)); err == nil && real != m.Src {
			srcPaths = append(srcPaths, real)
		}
	}
	allowed := func(rel string) bool {
		for _, s := range srcPaths {
			for _, a := range b.allowSockets {
				if filepath.Join(s, rel) == a {
					return true
				}
			}
		}
		return false
	}
	done := map[string]bool{}
	mask := func(rel string) error {
		if done[rel] || allowed(rel) {
			return nil
		}
		done[rel] = true
		return b.maskSocket(mnt, rel)
	}
	for _, l := range b.listeners {
		for _, s := range srcPaths {
			if rel, ok := strings.CutPrefix(l, strings.TrimSuffix(s, "/")+"/"); ok {
				if err := mask(rel); err != nil {
					return err
				}
			}
		}
	}
	return b.scanSockets(mnt, mask)
}

// maskSocket covers rel (beneath the mounted tree mnt) with an empty file
// when it is a socket. It is looked up without following any symlink and
// without leaving the tree: the path came from /proc/net/unix or a scan,
// and what lies there now is checked on its handle.
func (b *rootBuilder) maskSocket(mnt int, rel string) error {
	fd, err := unix.Openat2(mnt, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil // gone, or behind a link: not the listener's socket here
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil
	}
	if err := b.maskFile(fd); err != nil {
		return fmt.Errorf("covering the host socket %s: %w", rel, err)
	}
	return nil
}

// scanSockets lists the top of the tree mnt, and its subdirectories,
// while the run's budget lasts, and masks the sockets it finds.
func (b *rootBuilder) scanSockets(mnt int, mask func(string) error) error {
	dirs := []string{"."}
	for depth := 0; depth < 2 && len(dirs) > 0; depth++ {
		var next []string
		for _, d := range dirs {
			if b.scanned >= socketScanDirs {
				return nil
			}
			b.scanned++
			max := socketScanBytes
			if depth == 0 {
				max *= 8
			}
			ents, err := readDirFd(mnt, d, max)
			if err != nil {
				continue
			}
			for _, e := range ents {
				rel := filepath.Join(d, e.name)
				switch e.typ {
				case unix.DT_SOCK:
					if err := mask(rel); err != nil {
						return err
					}
				case unix.DT_DIR:
					next = append(next, rel)
				}
			}
		}
		dirs = next
	}
	return nil
}

type dirEnt struct {
	name string
	typ  uint8
}

// readDirFd lists rel beneath dirfd, with the types getdents gives (no
// stat per entry), stopping after about max bytes of entries.
func readDirFd(dirfd int, rel string, max int) ([]dirEnt, error) {
	fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []dirEnt
	buf := make([]byte, min(max, 32<<10))
	for read := 0; read < max; {
		n, err := unix.Getdents(fd, buf)
		read += n
		if err != nil {
			return out, err
		}
		if n <= 0 {
			return out, nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name.
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if s := string(name); s != "." && s != ".." {
				if typ == unix.DT_UNKNOWN {
					var st unix.Stat_t
					if unix.Fstatat(fd, s, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
						switch st.Mode & unix.S_IFMT {
						case unix.S_IFSOCK:
							typ = unix.DT_SOCK
						case unix.S_IFDIR:
							typ = unix.DT_DIR
						}
					}
				}
				out = append(out, dirEnt{s, typ})
			}
			off += reclen
		}
	}
	return out, nil
}
