package initexe

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCheckFile: a cached init is executed only as a regular file of
// ours, mode 0500, with one link and init's size, on a mount known to
// allow exec; anything else sends the run to the memfd.
func TestCheckFile(t *testing.T) {
	const euid, size = 1000, 4096
	good := func() (*unix.Stat_t, *unix.Statfs_t) {
		return &unix.Stat_t{Mode: unix.S_IFREG | 0o500, Uid: euid, Nlink: 1, Size: size},
			&unix.Statfs_t{Flags: stValid | unix.ST_NOSUID | unix.ST_NODEV}
	}
	for _, tc := range []struct {
		name   string
		change func(*unix.Stat_t, *unix.Statfs_t)
		want   string // "" is accepted
	}{
		{"as made", func(*unix.Stat_t, *unix.Statfs_t) {}, ""},
		{"directory", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Mode = unix.S_IFDIR | 0o500 }, "not a regular file"},
		{"symlink", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Mode = unix.S_IFLNK | 0o500 }, "not a regular file"},
		{"fifo", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Mode = unix.S_IFIFO | 0o500 }, "not a regular file"},
		{"another owner", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Uid = euid + 1 }, "owned by uid"},
		{"owner may write", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Mode = unix.S_IFREG | 0o700 }, "mode"},
		{"group may write", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Mode = unix.S_IFREG | 0o520 }, "mode"},
		{"others may write", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Mode = unix.S_IFREG | 0o502 }, "mode"},
		{"setuid", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Mode = unix.S_IFREG | 0o4500 }, "mode"},
		{"two links", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Nlink = 2 }, "2 links"},
		{"short", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Size = size - 1 }, "bytes, want"},
		{"empty", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Size = 0 }, "bytes, want"},
		{"long", func(st *unix.Stat_t, _ *unix.Statfs_t) { st.Size = size + 1 }, "bytes, want"},
		{"noexec mount", func(_ *unix.Stat_t, fs *unix.Statfs_t) { fs.Flags |= unix.ST_NOEXEC }, "noexec"},
		{"mount flags unknown", func(_ *unix.Stat_t, fs *unix.Statfs_t) { fs.Flags = 0 }, "unknown"},
	} {
		st, fs := good()
		tc.change(st, fs)
		err := checkFile(st, fs, euid, size)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: ESCAPED: accepted for exec", tc.name)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: refused with %q, want %q", tc.name, err, tc.want)
		}
	}
}

const testSum = "0123abcd"

var testBin = bytes.Repeat([]byte("hutch-init "), 1000)

// cacheRoot is a runtime directory for cached, and the path the cached
// init gets in it.
func cacheRoot(t *testing.T) (root, path string) {
	root = filepath.Join(t.TempDir(), "hutch")
	return root, filepath.Join(root, CacheDir, CacheName(testSum))
}

// TestCached: the first call makes the file (0500, init's bytes, opened
// read-only and close-on-exec), the next opens the same file; a planted
// file that fails a check is replaced, never executed; a cache directory
// that is not ours alone is not used at all.
func TestCached(t *testing.T) {
	root, path := cacheRoot(t)
	f := mustCached(t, root)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&0o7777 != 0o500 || st.Nlink != 1 {
		t.Fatalf("made %s: mode %#o, %d links, %v", path, st.Mode&0o7777, st.Nlink, err)
	}
	f.Close()
	again := mustCached(t, root)
	var st2 unix.Stat_t
	unix.Fstat(int(again.Fd()), &st2)
	if st2.Ino != st.Ino {
		t.Errorf("second call: made a new file instead of using the cached one")
	}
	again.Close()

	// Each plant returns the file that must not be what init runs.
	plants := map[string]func(t *testing.T, path string) string{
		"write bits":     func(t *testing.T, path string) string { return writePlant(t, path, testBin, 0o700) },
		"group-writable": func(t *testing.T, path string) string { return writePlant(t, path, testBin, 0o570) },
		"short":          func(t *testing.T, path string) string { return writePlant(t, path, testBin[:10], 0o500) },
		"symlink": func(t *testing.T, path string) string {
			target := writePlant(t, filepath.Join(t.TempDir(), "target"), testBin, 0o500)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return target
		},
		"second link": func(t *testing.T, path string) string {
			other := writePlant(t, filepath.Join(filepath.Dir(path), "..", "other-link"), testBin, 0o500)
			if err := os.Link(other, path); err != nil {
				t.Fatal(err)
			}
			return other
		},
	}
	for name, plant := range plants {
		t.Run(name, func(t *testing.T) {
			root, path := cacheRoot(t)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			bad := plant(t, path)
			// Held open, the planted inode's number cannot be reused by
			// its replacement.
			hold, err := unix.Open(bad, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(hold)
			var planted unix.Stat_t
			unix.Fstat(hold, &planted)
			f := mustCached(t, root)
			defer f.Close()
			var got unix.Stat_t
			unix.Fstat(int(f.Fd()), &got)
			if got.Ino == planted.Ino {
				t.Fatalf("ESCAPED: the planted file (%s) is what init would run", name)
			}
			if got.Mode != unix.S_IFREG|0o500 || got.Nlink != 1 {
				t.Fatalf("replacement: mode %#o, %d links", got.Mode, got.Nlink)
			}
		})
	}

	t.Run("empty directory", func(t *testing.T) {
		root, path := cacheRoot(t)
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		mustCached(t, root).Close()
	})
	t.Run("directory with files", func(t *testing.T) {
		root, path := cacheRoot(t)
		if err := os.MkdirAll(filepath.Join(path, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if f, err := cached(root, testSum, testBin); err == nil {
			f.Close()
			t.Fatal("a directory in the cached init's place: want an error (the memfd), got a file")
		}
		// Nothing was written: the next run does not pay for a copy.
		if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
			t.Errorf("the cache directory holds %d entries, want the directory alone", len(ents))
		}
	})
	unusable := map[string]func(t *testing.T, root string){
		"root group-writable": func(t *testing.T, root string) { mkdirMode(t, root, 0o770) },
		"cache dir others-writable": func(t *testing.T, root string) {
			mkdirMode(t, root, 0o700)
			mkdirMode(t, filepath.Join(root, CacheDir), 0o703)
		},
		"root a symlink": func(t *testing.T, root string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			mkdirMode(t, target, 0o700)
			if err := os.Symlink(target, root); err != nil {
				t.Fatal(err)
			}
		},
		"cache dir a file": func(t *testing.T, root string) {
			mkdirMode(t, root, 0o700)
			writePlant(t, filepath.Join(root, CacheDir), nil, 0o600)
		},
	}
	for name, setup := range unusable {
		t.Run(name, func(t *testing.T) {
			root, path := cacheRoot(t)
			setup(t, root)
			if f, err := cached(root, testSum, testBin); err == nil {
				f.Close()
				t.Fatalf("ESCAPED: used a cache directory that is not ours alone")
			}
			if _, err := os.Lstat(path); err == nil {
				t.Errorf("wrote %s into it", path)
			}
		})
	}
}

// TestCachedPrunes: making the cached init removes other versions' and
// temporary files a killed hutch left, but not one another hutch may be
// writing now.
func TestCachedPrunes(t *testing.T) {
	root, path := cacheRoot(t)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, CacheName("feedface"))
	stale := filepath.Join(dir, tempPrefix+"killed")
	fresh := filepath.Join(dir, tempPrefix+"writing")
	for _, p := range []string{old, stale, fresh} {
		writePlant(t, p, []byte("x"), 0o600)
	}
	long := time.Now().Add(-2 * tempGrace)
	if err := os.Chtimes(stale, long, long); err != nil {
		t.Fatal(err)
	}
	mustCached(t, root).Close()
	for p, want := range map[string]bool{old: false, stale: false, fresh: true, path: true} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// mustCached calls cached and checks what it returns: init's bytes, in a
// file open read-only and close-on-exec.
func mustCached(t *testing.T, root string) *os.File {
	t.Helper()
	f, err := cached(root, testSum, testBin)
	if err != nil {
		t.Fatalf("cached: %v", err)
	}
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("cached init's fd is not close-on-exec (%#x, %v)", fl, err)
	}
	if acc, _ := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); acc&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("cached init's fd is open for writing (%#x)", acc)
	}
	b, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(b, testBin) {
		t.Fatalf("cached init holds %d bytes (%v), want init's %d", len(b), err, len(testBin))
	}
	return f
}

func writePlant(t *testing.T, path string, data []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func mkdirMode(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
