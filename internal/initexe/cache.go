package initexe

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// The cache: copying init into a memfd costs every run 1.6–2 ms of CPU
// (the pages are allocated anew each time), more than the small init
// saves; a file already in the page cache costs nothing to exec. So init
// is kept, once per version, as a file in hutch's per-user runtime
// directory (owner-only, and hidden in every sandbox like the rest of
// that directory), named by its sha256. The file is what runc's
// CVE-2019-5736 would overwrite, so it is executed only if nothing but
// its owner could ever change it: a regular file we own, with no write
// bit for anyone (the owner must chmod it first, which a process inside
// a sandbox cannot reach), one link, init's size, on a mount that allows
// exec. Anything else, and the run takes the sealed memfd.

// CacheDir is the name of the cache's directory in the runtime directory.
const CacheDir = "init"

const (
	cachePrefix = "hutch-init-"
	tempPrefix  = ".tmp-"
	// tempGrace spares a temporary file another hutch may be writing now;
	// an older one was left by a kill -9 mid-write.
	tempGrace = time.Minute
	// stValid is statfs's ST_VALID (Linux 2.6.36): f_flags is filled in.
	stValid = 0x20
)

// CacheName is the cached init's file name for a sha256 sum.
func CacheName(sum string) string { return cachePrefix + sum }

// cached returns init, as a file opened read-only and close-on-exec from
// the cache under root (hutch's runtime directory), creating it if it
// is missing or fails a check. An error means: use the memfd.
func cached(root, sum string, bin []byte) (*os.File, error) {
	if sum == "" || strings.ContainsAny(sum, "/\x00") {
		return nil, errors.New("no usable sum")
	}
	dir, err := openCacheDir(root)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	name := CacheName(sum)
	f, err := openCached(dir, name, int64(len(bin)))
	if err == nil {
		return f, nil
	}
	// Missing, or not to be trusted: it lives in our private directory,
	// so replace it. What cannot be removed (a directory with files)
	// stays, and is not written to on every run.
	if err := unix.Unlinkat(int(dir.Fd()), name, 0); err == unix.EISDIR {
		if err := unix.Unlinkat(int(dir.Fd()), name, unix.AT_REMOVEDIR); err != nil {
			return nil, err
		}
	}
	if err := create(dir, name, bin); err != nil {
		return nil, err
	}
	return openCached(dir, name, int64(len(bin)))
}

// openCacheDir opens root/CacheDir, making either if missing, and checks
// that both are directories of ours that no one else can write.
func openCacheDir(root string) (*os.File, error) {
	if root == "" {
		return nil, errors.New("no runtime directory")
	}
	if err := unix.Mkdir(root, 0o700); err != nil && err != unix.EEXIST {
		return nil, err
	}
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rfd)
	if err := checkDir(rfd); err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	if err := unix.Mkdirat(rfd, CacheDir, 0o700); err != nil && err != unix.EEXIST {
		return nil, err
	}
	fd, err := unix.Openat(rfd, CacheDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = checkDir(fd)
	if err == nil {
		// Known before anything is written: on a noexec mount every run
		// would write the file anew, and then take the memfd anyway.
		err = checkExecMount(fd)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s/%s: %w", root, CacheDir, err)
	}
	return os.NewFile(uintptr(fd), root+"/"+CacheDir), nil
}

func checkDir(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return errors.New("not a directory of ours closed to others")
	}
	return nil
}

// openCached opens dir/name without following a symlink (nor blocking
// on a fifo planted there) and checks it (checkFile).
func openCached(dir *os.File, name string, size int64) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	var fs unix.Statfs_t
	if err = unix.Fstat(fd, &st); err == nil {
		err = unix.Fstatfs(fd, &fs)
	}
	if err == nil {
		err = checkFile(&st, &fs, os.Geteuid(), size)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cached init %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), dir.Name()+"/"+name), nil
}

// checkFile says whether a cached init, as fstat and fstatfs describe it,
// can be executed as init: only its owner, euid, could ever have changed
// it, it is whole, and its mount allows exec.
func checkFile(st *unix.Stat_t, fs *unix.Statfs_t, euid int, size int64) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("not a regular file")
	}
	if !mutate.Off("init-cache-check") {
		if int(st.Uid) != euid {
			return fmt.Errorf("owned by uid %d, not %d", st.Uid, euid)
		}
		if st.Mode&0o7777 != 0o500 {
			return fmt.Errorf("mode %#o, want 0500", st.Mode&0o7777)
		}
	}
	// Another link could be a name outside our directory, through which
	// the file could be found and changed.
	if st.Nlink != 1 {
		return fmt.Errorf("%d links", st.Nlink)
	}
	// A crash before the rename leaves only a temporary file; a short
	// file, whatever made it, fails here.
	if st.Size != size {
		return fmt.Errorf("%d bytes, want %d", st.Size, size)
	}
	return execMount(fs)
}

// checkExecMount says whether files on fd's mount can be executed.
func checkExecMount(fd int) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return err
	}
	return execMount(&fs)
}

func execMount(fs *unix.Statfs_t) error {
	if fs.Flags&stValid == 0 {
		return errors.New("the mount's flags are unknown")
	}
	if fs.Flags&unix.ST_NOEXEC != 0 {
		return errors.New("on a noexec mount")
	}
	return nil
}

// create writes bin into dir/name: under a temporary name first, made
// read-only and closed before the rename puts it in place, so that no
// writer exists when anyone execs it (else ETXTBSY) and no one ever sees
// it half written. Two hutches doing this at once each rename a whole
// file. The data is synced before the rename; after a crash, a short or
// empty file fails checkFile's size check and is replaced. It then removes what else is
// in dir: other versions' inits (a running sandbox keeps the file it
// execs alive) and temporary files a killed hutch left.
func create(dir *os.File, name string, bin []byte) error {
	dfd := int(dir.Fd())
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := tempPrefix + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	for b := bin; len(b) > 0; {
		var n int
		// On an error n is -1: stop before slicing (a full runtime
		// directory, ENOSPC, must send the run to the memfd, not panic).
		if n, err = unix.Write(fd, b); err != nil {
			break
		}
		b = b[n:]
	}
	if err == nil {
		err = unix.Fchmod(fd, 0o500)
	}
	if err == nil {
		// Once per version, so cheap: without it a crash on a file
		// system that keeps a new file's size but not its data (XFS)
		// could leave a whole-sized file of zeros, which passes
		// checkFile and fails every exec.
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	prune(dir, name)
	return nil
}

// prune removes from dir all but keep: other versions' inits, temporary
// files older than tempGrace.
func prune(dir *os.File, keep string) {
	names, err := dir.ReadDir(-1)
	if err != nil {
		return
	}
	dfd := int(dir.Fd())
	for _, e := range names {
		n := e.Name()
		switch {
		case n == keep:
		case strings.HasPrefix(n, cachePrefix):
			unix.Unlinkat(dfd, n, 0)
		case strings.HasPrefix(n, tempPrefix):
			var st unix.Stat_t
			if unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
				time.Since(time.Unix(st.Mtim.Unix())) > tempGrace {
				unix.Unlinkat(dfd, n, 0)
			}
		}
	}
}
