package result

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// Writer writes the document to a path resolved before the run: its
// directory is opened then, and held. The command may be able to write
// in that directory (the project's): by the time the run ends it could
// have put a symlink where the file goes, or moved the directory and put
// a symlink in its place. hutch runs as you, outside the sandbox, so
// following either would let the command overwrite any file of yours.
// The document goes to a new file made in the held directory (O_EXCL,
// O_NOFOLLOW), which is then renamed over the name: rename replaces a
// symlink rather than following it, and a reader never sees half a
// document.
type Writer struct {
	dir  *os.File // O_PATH
	name string
	path string
}

// Open resolves path (relative to the working directory) and opens its
// directory, which must exist. flag names the path in errors. The
// directory's descriptor is numbered above the fds up to above: those the
// caller passes into the sandbox (--preserve-fds), where a handle on a
// host directory would let the command reach the host's files through
// it, when the caller did not open one of them itself.
func Open(flag, path string, above int) (*Writer, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(abs)
	if strings.HasSuffix(path, "/") || name == "/" || name == "." || name == ".." {
		return nil, fmt.Errorf("%s %q: give a file's path, not a directory's", flag, path)
	}
	if fi, err := os.Lstat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s %q is a directory: give a file's path", flag, path)
	}
	fd, err := unix.Open(filepath.Dir(abs), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %q: its directory: %w", flag, path, err)
	}
	if !mutate.Off("result-fd") {
		high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, above+1)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", flag, path, err)
		}
		fd = high
	}
	dir := os.NewFile(uintptr(fd), filepath.Dir(abs))
	return &Writer{dir: dir, name: name, path: abs}, nil
}

// Path is the absolute path the document goes to.
func (w *Writer) Path() string { return w.path }

// Close lets go of the directory.
func (w *Writer) Close() error { return w.dir.Close() }

// Write writes r, whole or not at all.
func (w *Writer) Write(r *Result) error { return w.WriteJSON(r) }

// WriteJSON writes v as indented JSON, whole or not at all: the same
// care for another document of a run (--report).
func (w *Writer) WriteJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if mutate.Off("result-path") {
		// The defence off: resolve the path again now, following links.
		return os.WriteFile(w.path, data, 0o644)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	// A fixed-length name: the document's own may be near NAME_MAX.
	tmp := ".hutch-result-" + hex.EncodeToString(rnd[:])
	dirfd := int(w.dir.Fd())
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", w.path, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, w.name)
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("writing %s: %w", w.path, err)
	}
	return nil
}
