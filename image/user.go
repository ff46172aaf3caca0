package image

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// User is an image user resolved against the image's /etc/passwd and
// /etc/group.
type User struct {
	UID, GID uint32
	Name     string // "" when the user is numeric and not in passwd
	Home     string // "" when unknown
	Shell    string // the login shell in passwd; "" when unknown
	// Groups are the supplementary groups /etc/group lists the user in.
	Groups []uint32
}

// LookupUser resolves a config User string ("", "name", "uid",
// "name:group", "uid:gid", …) as docker does: names through the image's
// /etc/passwd and /etc/group, numbers as they are.
func (r *Root) LookupUser(spec string) (User, error) {
	if spec == "" {
		spec = "0"
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	passwd, _ := r.ReadFile("/etc/passwd")
	var out User
	found := false
	if n, err := strconv.ParseUint(u, 10, 32); err == nil {
		out.UID = uint32(n)
		if e, ok := passwdByUID(passwd, out.UID); ok {
			out.Name, out.GID, out.Home, out.Shell, found = e.name, e.gid, e.home, e.shell, true
		}
	} else if e, ok := passwdByName(passwd, u); ok {
		out.UID, out.GID, out.Name, out.Home, out.Shell, found = e.uid, e.gid, e.name, e.home, e.shell, true
	} else {
		return User{}, fmt.Errorf("the image's user %q is not in its /etc/passwd", u)
	}
	if !found {
		out.GID = out.UID
		if out.UID == 0 {
			out.GID, out.Home = 0, "/root"
		}
	}
	if out.Name != "" {
		group, _ := r.ReadFile("/etc/group")
		out.Groups = groupsOf(group, out.Name, out.GID)
	}
	if hasGroup {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			out.GID = uint32(n)
		} else {
			group, _ := r.ReadFile("/etc/group")
			gid, ok := groupByName(group, g)
			if !ok {
				return User{}, fmt.Errorf("the image's group %q is not in its /etc/group", g)
			}
			out.GID = gid
		}
	}
	return out, nil
}

type passwdEntry struct {
	name        string
	uid, gid    uint32
	home, shell string
}

func parsePasswd(b []byte, fn func(passwdEntry) bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		if fn(passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5], shell: f[6]}) {
			return
		}
	}
}

func passwdByUID(b []byte, uid uint32) (e passwdEntry, ok bool) {
	parsePasswd(b, func(x passwdEntry) bool {
		if x.uid == uid {
			e, ok = x, true
		}
		return ok
	})
	return
}

func passwdByName(b []byte, name string) (e passwdEntry, ok bool) {
	parsePasswd(b, func(x passwdEntry) bool {
		if x.name == name {
			e, ok = x, true
		}
		return ok
	})
	return
}

// groupsOf lists the groups whose member lists name the user, but its
// primary one.
func groupsOf(b []byte, user string, primary uint32) []uint32 {
	var out []uint32
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil || uint32(gid) == primary {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if strings.TrimSpace(m) == user {
				out = append(out, uint32(gid))
				break
			}
		}
	}
	return out
}

func groupByName(b []byte, name string) (uint32, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 3 && f[0] == name {
			if n, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				return uint32(n), true
			}
		}
	}
	return 0, false
}

// ReadFile reads a small file of the image as the merged overlay would
// show it: from the topmost layer that has it, unless a whiteout or an
// opaque directory above hides it. Symlinks are not followed.
func (r *Root) ReadFile(p string) ([]byte, error) {
	p = path.Clean("/" + p)
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for _, layer := range r.Layers {
		hidden := false
		// A whiteout or a non-directory on the way hides what is below;
		// an opaque directory on the way hides lower layers' contents.
		opaque := false
		cur := layer
		for i, part := range parts {
			cur = filepath.Join(cur, part)
			var st unix.Stat_t
			if err := unix.Lstat(cur, &st); err != nil {
				break
			}
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				hidden = true
				break
			}
			if i < len(parts)-1 {
				if st.Mode&unix.S_IFMT != unix.S_IFDIR {
					hidden = true
					break
				}
				if isOpaque(cur) {
					opaque = true
				}
				continue
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG {
				return nil, fmt.Errorf("%s in the image is not a regular file", p)
			}
			f, err := os.Open(cur)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(io.LimitReader(f, 4<<20))
		}
		if hidden || opaque {
			break
		}
	}
	return nil, fmt.Errorf("%s: %w", p, os.ErrNotExist)
}

func isOpaque(dir string) bool {
	buf := make([]byte, 4)
	for _, x := range []string{"user.overlay.opaque", "user.fuseoverlayfs.opaque", "trusted.overlay.opaque"} {
		n, err := unix.Lgetxattr(dir, x, buf)
		if err == nil && n > 0 && buf[0] == 'y' {
			return true
		}
	}
	return false
}
