package testimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// debian returns the files of the named packages as installed on this
// (Debian) host, as dpkg -L lists them, with the host's root symlinks
// (merged /usr: /bin -> usr/bin, /lib64 -> usr/lib64, …): a small Debian
// rootfs with glibc and dynamically linked programs, made offline.
func debian(pkgs []string) ([]*entry, error) {
	if len(pkgs) == 0 {
		return nil, errors.New("debian wants package names")
	}
	var ents []*entry
	seen := map[string]bool{}
	for _, l := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if t, err := os.Readlink("/" + l); err == nil {
			h := newHeader(tar.TypeSymlink, l, 0o777, 0, 0)
			h.Linkname = t
			ents = append(ents, &entry{hdr: h})
			seen["/"+l] = true
		}
	}
	for _, pkg := range pkgs {
		out, err := exec.Command("dpkg", "-L", pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("debian: dpkg -L %s: %v (is it installed?)", pkg, err)
		}
		for _, p := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(p, "/") || p == "/." {
				continue
			}
			// A path through a root symlink is stored at its real place.
			if dir, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
				p = filepath.Join(dir, filepath.Base(p))
			}
			if seen[p] {
				continue
			}
			fi, err := os.Lstat(p)
			if err != nil {
				continue // a diversion or a file removed since
			}
			// Parents first, so that every directory is in the layer.
			var parents []string
			for d := filepath.Dir(p); d != "/" && !seen[d]; d = filepath.Dir(d) {
				parents = append([]string{d}, parents...)
			}
			for _, d := range parents {
				seen[d] = true
				ents = append(ents, &entry{hdr: newHeader(tar.TypeDir, d[1:]+"/", 0o755, 0, 0)})
			}
			seen[p] = true
			mode := int64(fi.Mode().Perm())
			if fi.Mode()&os.ModeSetuid != 0 {
				mode |= 0o4000
			}
			if fi.Mode()&os.ModeSetgid != 0 {
				mode |= 0o2000
			}
			switch {
			case fi.IsDir():
				ents = append(ents, &entry{hdr: newHeader(tar.TypeDir, p[1:]+"/", mode, 0, 0)})
			case fi.Mode()&os.ModeSymlink != 0:
				t, err := os.Readlink(p)
				if err != nil {
					return nil, err
				}
				h := newHeader(tar.TypeSymlink, p[1:], 0o777, 0, 0)
				h.Linkname = t
				ents = append(ents, &entry{hdr: h})
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("debian: %w", err)
				}
				h := newHeader(tar.TypeReg, p[1:], mode, 0, 0)
				h.Size = int64(len(b))
				ents = append(ents, &entry{hdr: h, body: b})
			}
		}
	}
	return ents, nil
}

// busybox returns the entries of the busybox directive.
func busybox() ([]*entry, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w (install busybox-static)", err)
	}
	dir := func(name string, mode int64, uid, gid int) *entry {
		return &entry{hdr: newHeader(tar.TypeDir, name+"/", mode, uid, gid)}
	}
	file := func(name string, mode int64, body string) *entry {
		h := newHeader(tar.TypeReg, name, mode, 0, 0)
		h.Size = int64(len(body))
		return &entry{hdr: h, body: []byte(body)}
	}
	ents := []*entry{
		dir("bin", 0o755, 0, 0),
		dir("etc", 0o755, 0, 0),
		dir("usr", 0o755, 0, 0),
		dir("var", 0o755, 0, 0),
		dir("root", 0o700, 0, 0),
		dir("home", 0o755, 0, 0),
		dir("home/app", 0o755, 1000, 1000),
		dir("tmp", 0o1777, 0, 0),
		file("bin/busybox", 0o755, string(bin)),
	}
	for _, a := range BusyboxApplets {
		h := newHeader(tar.TypeSymlink, "bin/"+a, 0o777, 0, 0)
		h.Linkname = "busybox"
		ents = append(ents, &entry{hdr: h})
	}
	ents = append(ents,
		file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"+
			"app:x:1000:1000:app:/home/app:/bin/sh\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		file("etc/group", 0o644, "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
		file("etc/os-release", 0o644, "NAME=\"hutch-test\"\nID=hutchtest\n"+
			"PRETTY_NAME=\"hutch test image (busybox)\"\n"),
	)
	return ents, nil
}
