package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry; a Linkname of "$OUT" (or starting with it) names
// the test's directory outside the layer.
type ent struct {
	name, link string
	typ        byte
	mode       int64
	body       string
	xattrs     map[string]string
	mtime      time.Time
	uid, gid   int
}

func file(name, body string, mode int64) ent {
	return ent{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func dir(name string, mode int64) ent { return ent{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) ent { return ent{name: name, typ: tar.TypeLink, link: target} }

func buildTar(t *testing.T, outside string, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		if e.typ == tar.TypeXGlobalHeader {
			if err := tw.WriteHeader(&tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": "hi"}}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Mode:     e.mode,
			Linkname: strings.Replace(e.link, "$OUT", outside, 1),
			Size:     int64(len(e.body)),
			ModTime:  e.mtime,
			Uid:      e.uid,
			Gid:      e.gid,
			Format:   tar.FormatPAX,
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = time.Unix(1700000000, 0)
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("writing header %q: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unlockTree makes every directory under dir writable again, so that
// t.TempDir can remove what a layer left read-only.
func unlockTree(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return &st
}

func wantMode(t *testing.T, p string, typ, perm uint32) {
	t.Helper()
	st := lstat(t, p)
	if st.Mode&unix.S_IFMT != typ || st.Mode&0o7777 != perm {
		t.Errorf("%s: mode %#o, want %#o", p, st.Mode, typ|perm)
	}
}

func wantContent(t *testing.T, p, want string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s: content %q, want %q", p, b, want)
	}
}

func wantMissing(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want it missing, lstat says %v", p, err)
	}
}

func wantXattr(t *testing.T, p, name, want string) {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		t.Errorf("%s: xattr %s: %v", p, name, err)
		return
	}
	if got := string(buf[:n]); got != want {
		t.Errorf("%s: xattr %s = %q, want %q", p, name, got, want)
	}
}

func wantNoXattr(t *testing.T, p, name string) {
	t.Helper()
	if _, err := unix.Lgetxattr(p, name, make([]byte, 256)); err != unix.ENODATA {
		t.Errorf("%s: xattr %s: got %v, want ENODATA", p, name, err)
	}
}

func TestUnpack(t *testing.T) {
	mtime := time.Date(2020, 2, 3, 4, 5, 6, 789, time.UTC)
	tests := []struct {
		name    string
		ents    []ent
		wantErr string // substring; empty means success
		stats   *UnpackStats
		check   func(t *testing.T, dir, outside string)
	}{{
		name: "regular files keep content and mode",
		ents: []ent{
			file("plain", "hello", 0o644),
			file("suid", "#!", 0o4755),
			file("sgid-sticky", "", 0o3710),
			file("/abs/file", "abs", 0o600),
			file("./dot/file", "dot", 0o640),
		},
		stats: &UnpackStats{Files: 5, Bytes: 13},
		check: func(t *testing.T, dir, _ string) {
			wantContent(t, filepath.Join(dir, "plain"), "hello")
			wantMode(t, filepath.Join(dir, "plain"), unix.S_IFREG, 0o644)
			wantMode(t, filepath.Join(dir, "suid"), unix.S_IFREG, 0o4755)
			wantMode(t, filepath.Join(dir, "sgid-sticky"), unix.S_IFREG, 0o3710)
			wantContent(t, filepath.Join(dir, "abs/file"), "abs")
			wantContent(t, filepath.Join(dir, "dot/file"), "dot")
		},
	}, {
		name: "read-only directory still receives its entries",
		ents: []ent{
			dir("ro/", 0o555),
			file("ro/f", "x", 0o444),
			dir("ro/sub/", 0o500),
			file("ro/sub/g", "y", 0o644),
			dir("none/", 0),
		},
		stats: &UnpackStats{Files: 2, Dirs: 3, Bytes: 2},
		check: func(t *testing.T, dir, _ string) {
			wantMode(t, filepath.Join(dir, "ro"), unix.S_IFDIR, 0o555)
			wantMode(t, filepath.Join(dir, "ro/sub"), unix.S_IFDIR, 0o500)
			wantMode(t, filepath.Join(dir, "none"), unix.S_IFDIR, 0)
			wantContent(t, filepath.Join(dir, "ro/f"), "x")
			wantContent(t, filepath.Join(dir, "ro/sub/g"), "y")
		},
	}, {
		name:  "missing parents are created",
		ents:  []ent{file("a/b/c/f", "deep", 0o644)},
		stats: &UnpackStats{Files: 1, Bytes: 4},
		check: func(t *testing.T, dir, _ string) {
			for _, d := range []string{"a", "a/b", "a/b/c"} {
				wantMode(t, filepath.Join(dir, d), unix.S_IFDIR, 0o755)
			}
			wantContent(t, filepath.Join(dir, "a/b/c/f"), "deep")
		},
	}, {
		name: "layer root metadata",
		ents: []ent{
			{name: "./", typ: tar.TypeDir, mode: 0o751, mtime: mtime},
			file("f", "", 0o644),
		},
		stats: &UnpackStats{Files: 1, Dirs: 1},
		check: func(t *testing.T, dir, _ string) {
			wantMode(t, dir, unix.S_IFDIR, 0o751)
			if got := time.Unix(lstat(t, dir).Mtim.Unix()); !got.Equal(mtime) {
				t.Errorf("root mtime %v, want %v", got, mtime)
			}
		},
	}, {
		name: "symlinks keep their targets verbatim",
		ents: []ent{
			symlink("abs", "/etc/passwd"),
			symlink("rel", "../../up/there"),
			symlink("d/dangling", "nowhere"),
		},
		stats: &UnpackStats{Symlinks: 3},
		check: func(t *testing.T, dir, _ string) {
			for name, want := range map[string]string{"abs": "/etc/passwd", "rel": "../../up/there", "d/dangling": "nowhere"} {
				got, err := os.Readlink(filepath.Join(dir, name))
				if err != nil || got != want {
					t.Errorf("readlink %s = %q, %v; want %q", name, got, err, want)
				}
			}
		},
	}, {
		name: "hardlinks share the inode",
		ents: []ent{
			file("bin/orig", "data", 0o755),
			hardlink("bin/link", "bin/orig"),
			hardlink("other/link2", "/bin/orig"),
			symlink("sym", "bin/orig"),
			hardlink("symlink-link", "sym"),
		},
		stats: &UnpackStats{Files: 1, Symlinks: 1, Hardlinks: 3, Bytes: 4},
		check: func(t *testing.T, dir, _ string) {
			orig := lstat(t, filepath.Join(dir, "bin/orig"))
			for _, l := range []string{"bin/link", "other/link2"} {
				if st := lstat(t, filepath.Join(dir, l)); st.Ino != orig.Ino {
					t.Errorf("%s: inode %d, want %d", l, st.Ino, orig.Ino)
				}
			}
			if orig.Nlink != 3 {
				t.Errorf("nlink %d, want 3", orig.Nlink)
			}
			if a, b := lstat(t, filepath.Join(dir, "sym")), lstat(t, filepath.Join(dir, "symlink-link")); a.Ino != b.Ino {
				t.Errorf("hardlink to a symlink: inode %d, want %d", b.Ino, a.Ino)
			}
		},
	}, {
		name:    "hardlink to a missing target",
		ents:    []ent{hardlink("link", "nothing")},
		wantErr: `layer entry "link": link target "nothing" does not exist`,
	}, {
		name:    "hardlink escaping",
		ents:    []ent{hardlink("link", "../../etc/passwd")},
		wantErr: `layer entry "link": link target: "../../etc/passwd" escapes the layer`,
	}, {
		name:    "hardlink to a directory",
		ents:    []ent{dir("d/", 0o755), hardlink("link", "d")},
		wantErr: `link target "d" is a directory`,
	}, {
		name: "hardlink through a symlink",
		ents: []ent{
			symlink("etc", "/etc"),
			hardlink("passwd", "etc/passwd"),
		},
		wantErr: `link target "etc/passwd" passes through a symlink`,
	}, {
		name: "hardlink through a symlink outside",
		ents: []ent{
			file("secret", "s", 0o600),
			symlink("out", "$OUT"),
			hardlink("out/stolen", "secret"),
		},
		wantErr: `layer entry "out/stolen" passes through a symlink`,
	}, {
		name:    "name escaping",
		ents:    []ent{file("../escape", "x", 0o644)},
		wantErr: `layer entry "../escape": "../escape" escapes the layer`,
	}, {
		name:    "name escaping after cleaning",
		ents:    []ent{file("a/../../escape", "x", 0o644)},
		wantErr: `escapes the layer`,
	}, {
		name: "symlink parent pointing outside",
		ents: []ent{
			symlink("evil", "$OUT"),
			file("evil/pwned", "gotcha", 0o644),
		},
		wantErr: `layer entry "evil/pwned" passes through a symlink`,
	}, {
		name: "symlink parent pointing up",
		ents: []ent{
			symlink("a", "../.."),
			file("a/pwned", "gotcha", 0o644),
		},
		wantErr: `layer entry "a/pwned" passes through a symlink`,
	}, {
		name: "symlink to root",
		ents: []ent{
			symlink("link", "/"),
			file("link/etc/passwd", "root::0:0::/:/bin/sh\n", 0o644),
		},
		wantErr: `layer entry "link/etc/passwd" passes through a symlink`,
	}, {
		name: "directory through a symlink",
		ents: []ent{
			symlink("evil", "$OUT"),
			dir("evil/sub/", 0o777),
		},
		wantErr: `passes through a symlink`,
	}, {
		name: "whiteout through a symlink",
		ents: []ent{
			symlink("evil", "$OUT"),
			file("evil/.wh.victim", "", 0o644),
		},
		wantErr: `passes through a symlink`,
	}, {
		name: "opaque marker through a symlink",
		ents: []ent{
			symlink("evil", "$OUT"),
			file("evil/.wh..wh..opq", "", 0o644),
		},
		wantErr: `passes through a symlink`,
	}, {
		name: "symlink replaced by a directory is not followed",
		ents: []ent{
			symlink("d", "$OUT"),
			dir("d/", 0o755),
			file("d/f", "in", 0o644),
		},
		stats: &UnpackStats{Files: 1, Dirs: 1, Symlinks: 1, Bytes: 2},
		check: func(t *testing.T, dir, _ string) {
			wantMode(t, filepath.Join(dir, "d"), unix.S_IFDIR, 0o755)
			wantContent(t, filepath.Join(dir, "d/f"), "in")
		},
	}, {
		name:  "whiteout",
		ents:  []ent{file("etc/.wh.gone", "", 0o644)},
		stats: &UnpackStats{Whiteouts: 1},
		check: func(t *testing.T, dir, _ string) {
			st := lstat(t, filepath.Join(dir, "etc/gone"))
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("etc/gone: mode %#o rdev %d, want a character device 0/0", st.Mode, st.Rdev)
			}
			wantMissing(t, filepath.Join(dir, "etc/.wh.gone"))
		},
	}, {
		name:  "opaque directory",
		ents:  []ent{dir("var/", 0o755), file("var/.wh..wh..opq", "", 0o644), file("var/keep", "k", 0o644)},
		stats: &UnpackStats{Files: 1, Dirs: 1, Opaques: 1, Bytes: 1},
		check: func(t *testing.T, dir, _ string) {
			for _, x := range []string{"user.overlay.opaque", "user.fuseoverlayfs.opaque"} {
				wantXattr(t, filepath.Join(dir, "var"), x, "y")
			}
			wantMissing(t, filepath.Join(dir, "var/.wh..wh..opq"))
			wantContent(t, filepath.Join(dir, "var/keep"), "k")
		},
	}, {
		name:  "opaque marker creates its directory",
		ents:  []ent{file("a/b/.wh..wh..opq", "", 0o644)},
		stats: &UnpackStats{Opaques: 1},
		check: func(t *testing.T, dir, _ string) {
			wantMode(t, filepath.Join(dir, "a/b"), unix.S_IFDIR, 0o755)
			wantXattr(t, filepath.Join(dir, "a/b"), "user.overlay.opaque", "y")
			wantNoXattr(t, filepath.Join(dir, "a"), "user.overlay.opaque")
		},
	}, {
		name: "whiteouts hide only lower layers",
		ents: []ent{
			file("kept", "mine", 0o644),
			file(".wh.kept", "", 0o644),
			dir("d/", 0o755),
			file("d/x", "x", 0o644),
			file(".wh.d", "", 0o644),
		},
		stats: &UnpackStats{Files: 2, Dirs: 1, Whiteouts: 2, Bytes: 5},
		check: func(t *testing.T, dir, _ string) {
			wantContent(t, filepath.Join(dir, "kept"), "mine")
			wantContent(t, filepath.Join(dir, "d/x"), "x")
			wantXattr(t, filepath.Join(dir, "d"), "user.overlay.opaque", "y")
		},
	}, {
		name: "a whited-out name reused in the same layer",
		ents: []ent{
			file(".wh.f", "", 0o644),
			file("f", "new", 0o644),
			file(".wh.d", "", 0o644),
			dir("d/", 0o750),
			file(".wh.p", "", 0o644),
			file("p/child", "c", 0o644),
		},
		stats: &UnpackStats{Files: 2, Dirs: 1, Whiteouts: 3, Bytes: 4},
		check: func(t *testing.T, dir, _ string) {
			wantContent(t, filepath.Join(dir, "f"), "new")
			wantMode(t, filepath.Join(dir, "d"), unix.S_IFDIR, 0o750)
			wantXattr(t, filepath.Join(dir, "d"), "user.overlay.opaque", "y")
			wantXattr(t, filepath.Join(dir, "p"), "user.fuseoverlayfs.opaque", "y")
			wantContent(t, filepath.Join(dir, "p/child"), "c")
		},
	}, {
		name: "AUFS bookkeeping is dropped",
		ents: []ent{
			dir(".wh..wh.plnk/", 0o700),
			file(".wh..wh.plnk/1234.5678", "x", 0o644),
			file(".wh..wh.aufs", "", 0o644),
		},
		stats: &UnpackStats{},
		check: func(t *testing.T, dir, _ string) {
			wantMissing(t, filepath.Join(dir, ".wh..wh.plnk"))
			wantMissing(t, filepath.Join(dir, ".wh..wh.aufs"))
		},
	}, {
		name:    "invalid whiteout",
		ents:    []ent{file("a/.wh..", "", 0o644)},
		wantErr: `invalid whiteout name`,
	}, {
		name: "later entries override earlier ones",
		ents: []ent{
			file("f", "first", 0o644),
			file("f", "second", 0o600),
			dir("d/", 0o555),
			dir("d/sub/", 0o555),
			file("d/sub/x", "x", 0o644),
			file("d", "now a file", 0o644),
			symlink("s", "target"),
			file("s", "was a symlink", 0o644),
			file("g", "was a file", 0o644),
			dir("g/", 0o711),
			dir("keep/", 0o755),
			file("keep/x", "x", 0o644),
			dir("keep/", 0o700),
		},
		stats: &UnpackStats{Files: 7, Dirs: 5, Symlinks: 1, Bytes: 46},
		check: func(t *testing.T, dir, _ string) {
			wantContent(t, filepath.Join(dir, "f"), "second")
			wantMode(t, filepath.Join(dir, "f"), unix.S_IFREG, 0o600)
			wantContent(t, filepath.Join(dir, "d"), "now a file")
			wantContent(t, filepath.Join(dir, "s"), "was a symlink")
			wantMode(t, filepath.Join(dir, "g"), unix.S_IFDIR, 0o711)
			wantMode(t, filepath.Join(dir, "keep"), unix.S_IFDIR, 0o700)
			wantContent(t, filepath.Join(dir, "keep/x"), "x")
		},
	}, {
		name:    "entry beneath a file",
		ents:    []ent{file("f", "", 0o644), file("f/g", "", 0o644)},
		wantErr: `layer entry "f/g": "f" is not a directory`,
	}, {
		name:    "root replaced by a file",
		ents:    []ent{file(".", "", 0o644)},
		wantErr: `layer entry ".": the layer root can only be a directory`,
	}, {
		name: "devices are skipped",
		ents: []ent{
			{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
			{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660},
		},
		stats: &UnpackStats{DevicesSkipped: 2},
		check: func(t *testing.T, dir, _ string) {
			wantMissing(t, filepath.Join(dir, "dev"))
		},
	}, {
		name:    "device names are checked too",
		ents:    []ent{{name: "../dev/null", typ: tar.TypeChar, mode: 0o666}},
		wantErr: `escapes the layer`,
	}, {
		name:  "fifo",
		ents:  []ent{{name: "run/pipe", typ: tar.TypeFifo, mode: 0o620}},
		stats: &UnpackStats{FIFOs: 1},
		check: func(t *testing.T, dir, _ string) {
			wantMode(t, filepath.Join(dir, "run/pipe"), unix.S_IFIFO, 0o620)
		},
	}, {
		name: "xattrs",
		ents: []ent{
			{name: "f", typ: tar.TypeReg, mode: 0o644, xattrs: map[string]string{
				"user.mime":                 "text/plain",
				"user.overlay.redirect":     "/etc",
				"user.overlay.opaque":       "y",
				"user.fuseoverlayfs.opaque": "y",
				"trusted.overlay.opaque":    "y",
				"security.selinux":          "system_u:object_r:etc_t:s0",
				// Not a valid capability set: refused as root, and
				// without CAP_SETFCAP refused anyway.
				"security.capability": "x",
			}},
			{name: "d/", typ: tar.TypeDir, mode: 0o755, xattrs: map[string]string{
				"user.overlay.redirect": "/elsewhere",
				"user.comment":          "dir",
			}},
			{name: "l", typ: tar.TypeSymlink, link: "f", xattrs: map[string]string{"user.x": "y"}},
		},
		stats: &UnpackStats{Files: 1, Dirs: 1, Symlinks: 1, XattrsSkipped: 8},
		check: func(t *testing.T, dir, _ string) {
			f := filepath.Join(dir, "f")
			wantXattr(t, f, "user.mime", "text/plain")
			wantNoXattr(t, f, "user.overlay.redirect")
			wantNoXattr(t, f, "user.overlay.opaque")
			wantNoXattr(t, f, "user.fuseoverlayfs.opaque")
			d := filepath.Join(dir, "d")
			wantXattr(t, d, "user.comment", "dir")
			wantNoXattr(t, d, "user.overlay.redirect")
		},
	}, {
		name: "modification times",
		ents: []ent{
			{name: "d/", typ: tar.TypeDir, mode: 0o755, mtime: mtime},
			{name: "d/f", typ: tar.TypeReg, mode: 0o644, mtime: mtime.Add(time.Hour)},
			{name: "d/l", typ: tar.TypeSymlink, link: "f", mtime: mtime.Add(2 * time.Hour)},
			{name: "d/p", typ: tar.TypeFifo, mode: 0o600, mtime: mtime.Add(3 * time.Hour)},
		},
		stats: &UnpackStats{Files: 1, Dirs: 1, Symlinks: 1, FIFOs: 1},
		check: func(t *testing.T, dir, _ string) {
			for name, want := range map[string]time.Time{
				"d": mtime, "d/f": mtime.Add(time.Hour), "d/l": mtime.Add(2 * time.Hour), "d/p": mtime.Add(3 * time.Hour),
			} {
				if got := time.Unix(lstat(t, filepath.Join(dir, name)).Mtim.Unix()); !got.Equal(want) {
					t.Errorf("%s: mtime %v, want %v", name, got, want)
				}
			}
		},
	}, {
		name:    "unsupported type",
		ents:    []ent{{name: "vol", typ: 'V'}},
		wantErr: `layer entry "vol": unsupported entry type 'V'`,
	}, {
		name:  "global header is ignored",
		ents:  []ent{{typ: tar.TypeXGlobalHeader}, file("f", "", 0o644)},
		stats: &UnpackStats{Files: 1},
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			t.Cleanup(func() { unlockTree(dir) })
			layer := buildTar(t, outside, tt.ents)
			stats, err := Unpack(bytes.NewReader(layer), dir, UnpackOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unpack error = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if left, _ := os.ReadDir(outside); len(left) > 0 {
				t.Errorf("wrote outside the layer: %v", left)
			}
			if tt.stats != nil && stats != *tt.stats {
				t.Errorf("stats = %+v, want %+v", stats, *tt.stats)
			}
			if tt.check != nil {
				tt.check(t, dir, outside)
			}
		})
	}
}

func TestUnpackTruncated(t *testing.T) {
	layer := buildTar(t, "", []ent{file("f", strings.Repeat("x", 4096), 0o644)})
	_, err := Unpack(bytes.NewReader(layer[:1024]), t.TempDir(), UnpackOptions{})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Unpack of a truncated layer: %v, want io.ErrUnexpectedEOF", err)
	}
	if !strings.HasPrefix(err.Error(), `layer entry "f": `) {
		t.Errorf("error %q does not name the entry", err)
	}
}

func TestUnpackNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(bytes.NewReader(buildTar(t, "", nil)), f, UnpackOptions{}); !errors.Is(err, unix.ENOTDIR) {
		t.Fatalf("Unpack into a file: %v, want ENOTDIR", err)
	}
}

// TestUnpackOwners applies owners when running as root. An unprivileged
// user cannot own files as anyone else, so there it checks that squashing
// (Chown unset) leaves everything to the caller.
func TestUnpackOwners(t *testing.T) {
	ents := []ent{
		{name: "d/", typ: tar.TypeDir, mode: 0o755, uid: 1234, gid: 5678},
		{name: "d/suid", typ: tar.TypeReg, mode: 0o4755, body: "x", uid: 1234, gid: 5678},
		{name: "d/l", typ: tar.TypeSymlink, link: "suid", uid: 1234, gid: 5678},
		{name: "d/p", typ: tar.TypeFifo, mode: 0o600, uid: 1234, gid: 5678},
		{name: "implicit/unmapped", typ: tar.TypeReg, mode: 0o644, uid: 999, gid: 5678},
	}
	dir := t.TempDir()
	layer := buildTar(t, "", ents)
	root := os.Geteuid() == 0
	opts := UnpackOptions{}
	if root {
		notNine := func(id uint32) bool { return id != 999 }
		opts = UnpackOptions{Chown: true, MappedUID: notNine, MappedGID: notNine}
	}
	stats, err := Unpack(bytes.NewReader(layer), dir, opts)
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	type owner struct{ uid, gid uint32 }
	want := map[string]owner{
		"d": {1234, 5678}, "d/suid": {1234, 5678}, "d/l": {1234, 5678}, "d/p": {1234, 5678},
		"implicit": {0, 0}, "implicit/unmapped": {0, 5678},
	}
	squashed := 1
	if !root {
		me := owner{uint32(os.Geteuid()), uint32(os.Getegid())}
		for k := range want {
			want[k] = me
		}
		squashed = 0
	}
	for name, w := range want {
		st := lstat(t, filepath.Join(dir, name))
		if got := (owner{st.Uid, st.Gid}); got != w {
			t.Errorf("%s: owner %d:%d, want %d:%d", name, got.uid, got.gid, w.uid, w.gid)
		}
	}
	// chown clears setuid: the mode must come after the owner.
	wantMode(t, filepath.Join(dir, "d/suid"), unix.S_IFREG, 0o4755)
	if stats.OwnersSquashed != squashed {
		t.Errorf("OwnersSquashed = %d, want %d", stats.OwnersSquashed, squashed)
	}
}
